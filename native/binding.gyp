{
  "targets": [
    {
      "target_name": "cpt_native",
      "sources": [
        "src/binding.cpp",
        "src/engine.cpp",
        "src/gemm.cpp",
        "src/kernel_scalar.cpp",
        "src/kernel_avx2.cpp",
        "src/kernel_avx512.cpp",
        "src/kernel_select.cpp",
        "src/bf16_select.cpp",
        "src/bf16_pack.cpp",
        "src/bf16_amx.cpp",
        "src/bf16_dp.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "cflags": ["-O3", "-ffp-contract=fast", "-fno-math-errno"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-ffp-contract=fast", "-fno-math-errno"],
      "ldflags": ["-pthread"],
      "libraries": ["-ldl"]
    }
  ]
}
