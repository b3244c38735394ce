#!/usr/bin/env bash
# The CUDA engine's checks on a machine with an NVIDIA GPU, in one command, without Node:
#   bash native/cuda/verify.sh            (from the repository root; ~6 min on an H100/H200)
# 1. builds libcpt_cuda.so and the harness with the machine's nvcc, or uses the ones carried in
#    native/build-cuda/ (npm run cuda:bundle makes them, with the data below, on any machine);
# 2. golden: fp32 and bf16 against the PyTorch golden fixture (logits, loss, every gradient);
# 3. parity: fp32 against the CPU engine on four configs (both residual modes, rotary 0 to 1,
#    tied/untied, several attention blocks and head chunks), one AdamW step; bitwise
#    determinism (fp32, bf16) and recomputation changing no bit;
# 4. train: 200 steps of a pythia-160m shape on kit tokens, CPU fp32 vs CUDA fp32 and bf16;
# 5. bench: bf16 training tokens/s and MFU for 160m, 410m and 1b at seq 2048, and PyTorch
#    (scripts/anchors/torch_neox.py: HF GPT-NeoX, bf16 autocast, SDPA, fused AdamW, eager) on the
#    same GPU, ratio printed.
# Prints name=value lines; exits non-zero when a check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=native/build-cuda
DATA=$B/data
fail=0
run() { echo "# $*"; timeout 300 "$@" || { echo "FAILED($?): $*"; fail=1; }; }

# cuBLASLt: the CUDA toolkit's, or the one bundled with PyTorch's NVIDIA wheels.
PYLIB=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="${CUDA_HOME:-/usr/local/cuda}/lib64:${PYLIB}:${LD_LIBRARY_PATH:-}"
NVCC=$(command -v nvcc || ls "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" 2>/dev/null)
if [ -n "$NVCC" ]; then
  echo "nvcc=$("$NVCC" --version | tail -1)"
  if make -s -B -C native/cuda all harness NVCC="$NVCC" OUT=../build-cuda -j8; then echo "build=pass"
  else echo "build=FAILED (with $NVCC; trying the carried binaries)"; fail=1; fi
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu=/'
echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
[ -x $B/cuda_check ] || { echo "no $B/cuda_check: run npm run cuda:bundle first, or install nvcc"; exit 1; }

run $B/cuda_check golden "$DATA/neox-tiny"
run $B/cuda_check golden test/engine/fixtures/neox-tiny-variant
run $B/cuda_check parity
run $B/cuda_check train "$DATA/kit-tokens.u16" 200 2 256 "$(nproc)"
for s in 160m 410m 1b; do
  ours=$(timeout 300 $B/cuda_check bench $s 4 2048 10 | tee /dev/stderr | sed -n "s/^cuda_train_tok_s_$s=//p")
  peer=$(timeout 300 python3 scripts/anchors/torch_neox.py $s 2048 4 10 bf16 eager cuda | tee /dev/stderr | sed -n "s/.* train_tok_s=\([0-9]*\).*/\1/p")
  if [ -n "$ours" ] && [ -n "$peer" ]; then
    echo "ratio_vs_torch_$s=$(python3 -c "print(f'{$ours / $peer:.2f}')")"
  else
    echo "bench_$s=FAILED"; fail=1
  fi
done
echo "verify=$([ $fail = 0 ] && echo pass || echo FAIL)"
exit $fail
