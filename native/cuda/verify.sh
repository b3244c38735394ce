#!/usr/bin/env bash
# The CUDA engine's checks on a machine with an NVIDIA GPU, as one command under one deadline,
# without Node (GPU machines may have none):
#   bash native/cuda/verify.sh [DEADLINE_S]      from the repository root; default 540 s
# Before a GPU is held, `npm run cuda:bundle` builds everything here and writes what the checks
# read into native/build-cuda/data (the golden fixture, kit tokens, the CPU reference curve);
# carry native/build-cuda, dist/cpt and native/build/Release/cpt_native.node. Steps, each with
# its own time budget inside the deadline:
#   preflight  15 s: CPU, GPU, driver, CUDA runtime, cuBLASLt, the carried binaries' libraries,
#              PyTorch; stops with a diagnosis when the engine cannot run. The carried binaries
#              are used; they are rebuilt (nvcc) only when they fail to load.
#   golden     fp32 and bf16 against the PyTorch golden fixtures (margins printed), and with the
#              biases, residual sums and bias gradients by kernels instead of cuBLASLt's
#              epilogues (CPT_CUDA_EPILOGUES=0), and with the softmax by a warp per row
#              (CPT_CUDA_SOFTMAX=warp; parity too)
#   parity     fp32 against the CPU engine on five configs, one AdamW step; the embedding gradient's
#              device sort past 2^16 ids, clipping and a non-finite gradient; CUDA graphs replaying
#              steps bitwise as the eager engine runs them; bitwise determinism
#              and recomputation (golden and parity with CUDA_LAUNCH_BLOCKING=1)
#   flash      the fused attention on mma.sync tiles (bf16; mma_*) against the unfused path and
#              the CPU engine, head dimensions 32, 64, 80, 128, 256, bitwise repeat
#   1b         bf16 training tokens/s and MFU at seq 2048, ours then PyTorch (HF GPT-NeoX, bf16
#              autocast, SDPA, fused AdamW, eager), ratio; and where our step's time goes per
#              kernel (CUDA events) beside the performance model's figures (model-SHAPE.tsv);
#              the other paths measured the same way beside it: _kernels (CPT_CUDA_EPILOGUES=0, 1b
#              only), _eager (each step launched, not replayed as a CUDA graph: CPT_CUDA_GRAPHS=0),
#              _warpsoftmax (the softmax by a warp per row, CPT_CUDA_SOFTMAX=warp), _mma (the
#              attention on mma.sync tiles, forward and backward, CPT_CUDA_ATTENTION=mma)
#   sanitize   compute-sanitizer memcheck, racecheck and synccheck over the flash check
#   curve      200 steps of a 160m shape on kit tokens, CUDA fp32 and bf16 against the carried
#              CPU curve
#   160m, 410m the same benchmark as 1b
#   cpt        when time is left: `cpt train` of a pythia-160m recipe on the cuda engine, with
#              the bundled CLI (dist/cpt) on the carried Node (native/build-cuda/node.xz)
# Output is line-buffered, tee'd to $OUT/verify.log (else native/build-cuda/verify.log), and
# ends with a compact name=value summary. Exit 0 only when every step ran and passed.
# VERIFY_SKIP='REGEX' skips the steps whose whole name it matches (e.g. 'sanitize|curve_160m').
# CPT_CUDA_SIM=1 runs it all on the SIMT simulator build instead (native/build-cuda-sim): how
# the tests check the preflight and the deadline without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEADLINE=${1:-${VERIFY_DEADLINE:-540}}
SIM=${CPT_CUDA_SIM:-0}
B=native/build-cuda
[ "$SIM" = 1 ] && B=native/build-cuda-sim
DATA=${VERIFY_DATA:-native/build-cuda/data}
LOGDIR=${OUT:-native/build-cuda}
mkdir -p "$LOGDIR"
exec > >(exec stdbuf -oL tee "$LOGDIR/verify.log") 2>&1
export PYTHONUNBUFFERED=1
START=$SECONDS
T0=$EPOCHREALTIME
SUMMARY=()
fail=0

note() { SUMMARY+=("$1"); echo "$1"; }
left() { echo $((DEADLINE - (SECONDS - START))); }
finish() {
  echo "# summary: $((SECONDS - START)) s of a $DEADLINE s deadline"
  printf '%s\n' "${SUMMARY[@]}"
  echo "verify=$1"
  [ "$1" = pass ] && exit 0 || exit 1
}
# Stop now, saying why and what to do.
diagnose() {
  note "preflight=FAIL"
  note "diagnosis=$1"
  finish FAIL
}

# step NAME BUDGET CMD...: CMD gets BUDGET seconds or what the deadline leaves (5 s kept for the
# summary); its key figures join the summary.
step() {
  local name=$1 budget=$2 t
  shift 2
  if [[ -n "${VERIFY_SKIP:-}" && "$name" =~ ^(${VERIFY_SKIP})$ ]]; then
    note "$name=skipped (VERIFY_SKIP)"
    return 1
  fi
  t=$(($(left) - 5))
  ((budget < t)) && t=$budget
  if ((t < 5)); then
    note "$name=SKIPPED (deadline)"
    fail=1
    return 1
  fi
  echo "# $name (budget ${t} s): $*"
  local s0=$SECONDS log="$LOGDIR/step-$name.log"
  timeout -k 5 "$t" stdbuf -oL "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]} took=$((SECONDS - s0))
  while IFS= read -r l; do SUMMARY+=("$l"); done < <(grep -E '^(golden_|parity_|embedding_|adamw_|graph|mma_hd|deterministic_|recompute_|cuda_(train_tok_s|tflops|mfu)_|profile_step_ms_|model_step_ms_|train_(final_loss|max_abs|margin)|torch=|done: |last losses: )' "$log")
  if ((rc == 124 || rc == 137)); then
    note "$name=TIMEOUT after ${took} s"
  elif ((rc != 0)); then
    note "$name=FAIL (exit $rc, ${took} s)"
  else
    note "$name=pass (${took} s)"
    return 0
  fi
  fail=1
  return 1
}

# ---- preflight
echo "# preflight: $(date -u +%FT%TZ), deadline $DEADLINE s"
note "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
if [ "$SIM" != 1 ]; then
  command -v nvidia-smi >/dev/null || diagnose "nvidia-smi not found: no NVIDIA driver on this machine"
  smi=$(timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -1)
  [ -n "$smi" ] && ! grep -qi "fail\|error" <<<"$smi" || diagnose "nvidia-smi found no GPU: $smi"
  note "gpu=$smi"
  driver=$(cut -d, -f2 <<<"$smi" | tr -d ' ')
  # The CUDA 13 build needs R580+; the CUDA 11.8 build beside it (native/build-cuda/cuda11) runs
  # from R450 (no PTX JIT below R520; its sm_80/sm_90 machine code needs none).
  if ((${driver%%.*} < 580)); then
    if [ -x native/build-cuda/cuda11/cuda_check ] && ((${driver%%.*} >= 450)); then
      B=native/build-cuda/cuda11
      note "build=cuda11 (driver $driver is older than R580: the CUDA 11.8 build)"
    else
      diagnose "driver $driver: the CUDA engine is built with CUDA 13, which needs driver R580 or newer$([ -x native/build-cuda/cuda11/cuda_check ] || echo ', and the CUDA 11.8 build (R450+) was not carried: native/cuda/fetch-cuda11.sh, then CPT_CUDA11_ROOT=DIR npm run build:native')"
    fi
  fi
fi
# cuBLASLt: the CUDA toolkit's, or the one in NVIDIA's PyPI wheels (PyTorch brings them).
PYLIBS=$(timeout 10 python3 -c 'import glob, site; print(":".join(sorted(set(p for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/*/lib")))))' 2>/dev/null)
export LD_LIBRARY_PATH="${CUDA_HOME:-/usr/local/cuda}/lib64:${PYLIBS}:${LD_LIBRARY_PATH:-}"
[ -x "$B/cuda_check" ] || diagnose "no $B/cuda_check: run npm run cuda:bundle where the code is, and carry native/build-cuda"
probe=$(timeout 15 "$B/cuda_check" probe 2>&1)
prc=$?
if grep -q "error while loading shared libraries" <<<"$probe"; then
  NVCC=$(command -v nvcc || ls "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" 2>/dev/null)
  [ -n "$NVCC" ] || diagnose "the carried binaries do not load and there is no nvcc to rebuild them: $(grep -m1 'error while loading' <<<"$probe")"
  echo "# the carried binaries do not load ($(grep -m1 'error while loading' <<<"$probe")); rebuilding with $NVCC"
  make -s -B -C native/cuda all harness NVCC="$NVCC" OUT=../build-cuda -j"$(nproc)" || diagnose "the rebuild with $NVCC failed"
  note "rebuilt=yes"
  probe=$(timeout 15 "$B/cuda_check" probe 2>&1)
  prc=$?
fi
echo "$probe"
while IFS= read -r l; do SUMMARY+=("$l"); done < <(grep -E '^(gpu_|cuda_|cublaslt_)' <<<"$probe")
if ((prc != 0)); then
  why=$(sed -n 's/^probe_error=//p' <<<"$probe")
  diagnose "${why:-$probe}"
fi
if timeout 20 python3 -c 'import torch, transformers; print(f"torch={torch.__version__} (CUDA {torch.version.cuda}, GPU seen: {torch.cuda.is_available()}) transformers={transformers.__version__}")' >"$LOGDIR/torch.txt" 2>&1; then
  note "$(cat "$LOGDIR/torch.txt")"
  TORCH=1
else
  note "torch=missing ($(tail -1 "$LOGDIR/torch.txt")): the PyTorch comparisons are skipped"
  TORCH=0
fi
for f in neox-tiny/model.safetensors kit-tokens.u16 cpu-160m.ref model-1b.tsv; do
  [ -e "$DATA/$f" ] || note "data=missing $DATA/$f (npm run cuda:bundle writes it): the steps that read it are skipped"
done
# tenths of a second: whole seconds would read 1 s for a preflight that crossed a second boundary
note "preflight=pass ($(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"

# ---- correctness: synchronous launches, so a fault is reported by the launch that made it
export CUDA_LAUNCH_BLOCKING=1 VERBOSE=1
[ -e "$DATA/neox-tiny/model.safetensors" ] && step golden 40 "$B/cuda_check" golden "$DATA/neox-tiny"
step golden_variant 40 "$B/cuda_check" golden test/engine/fixtures/neox-tiny-variant
# biases, residual sums and bias gradients by kernels instead of cuBLASLt's epilogues (CPT_CUDA_EPILOGUES=0)
[ -e "$DATA/neox-tiny/model.safetensors" ] && step golden_kernels 40 env CPT_CUDA_EPILOGUES=0 "$B/cuda_check" golden "$DATA/neox-tiny"
# the softmax by a warp per row (CPT_CUDA_SOFTMAX=warp, opt-in until measured here)
[ -e "$DATA/neox-tiny/model.safetensors" ] && step golden_warpsoftmax 40 env CPT_CUDA_SOFTMAX=warp "$B/cuda_check" golden "$DATA/neox-tiny"
unset VERBOSE
step parity 90 "$B/cuda_check" parity
step parity_warpsoftmax 90 env CPT_CUDA_SOFTMAX=warp "$B/cuda_check" parity
step flash 60 "$B/cuda_check" flash
unset CUDA_LAUNCH_BLOCKING

# ---- speed: ours, then PyTorch on the same GPU, and the ratio
bench() {
  local s=$1 budget=$2 v
  step "bench_$s" "$budget" "$B/cuda_check" bench "$s" 4 2048 10 0 "$DATA/model-$s.tsv" || return
  # the other paths the same way: the bias and residual epilogues off (their kernels instead; 1b
  # only), each step launched eagerly instead of replayed as a CUDA graph, the softmax by a warp
  # per row, the attention on mma.sync tiles
  [ "$s" = 1b ] && step "bench_${s}_kernels" "$budget" env CPT_CUDA_EPILOGUES=0 "$B/cuda_check" bench "$s" 4 2048 10 0
  step "bench_${s}_eager" "$budget" env CPT_CUDA_GRAPHS=0 "$B/cuda_check" bench "$s" 4 2048 10 0 "$DATA/model-$s.tsv"
  step "bench_${s}_warpsoftmax" "$budget" env CPT_CUDA_SOFTMAX=warp "$B/cuda_check" bench "$s" 4 2048 10 0 "$DATA/model-$s.tsv"
  step "bench_${s}_mma" "$budget" env CPT_CUDA_ATTENTION=mma "$B/cuda_check" bench "$s" 4 2048 10 0 "$DATA/model-${s}_mma.tsv"
  [ "$TORCH" = 1 ] || return
  step "torch_$s" "$budget" python3 scripts/anchors/torch_neox.py "$s" 2048 4 10 bf16 eager cuda || return
  local peer ours
  peer=$(sed -n 's/.* train_tok_s=\([0-9.]*\).*/\1/p' "$LOGDIR/step-torch_$s.log")
  for v in "$s" "${s}_kernels" "${s}_eager" "${s}_warpsoftmax" "${s}_mma"; do
    ours=$(sed -n "s/^cuda_train_tok_s_$v=//p" "$LOGDIR/step-bench_$v.log" 2>/dev/null)
    [ -n "$ours" ] && [ -n "$peer" ] && note "ratio_vs_torch_$v=$(awk -v a="$ours" -v b="$peer" 'BEGIN { printf "%.2f", a / b }')"
  done
}
bench 1b 90
# the fused attention's shared memory and barriers under NVIDIA's checkers (a GPU only)
CS=$(command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" 2>/dev/null)
if [ "$SIM" != 1 ] && [ -n "$CS" ]; then
  step sanitize 120 bash -c "for t in memcheck racecheck synccheck; do echo \"# \$t\"; '$CS' --tool \$t --error-exitcode 9 '$B/cuda_check' flash 48 || exit 1; done"
fi
if [ -e "$DATA/kit-tokens.u16" ] && [ -e "$DATA/cpu-160m.ref" ]; then
  step curve_160m 90 "$B/cuda_check" train "$DATA/kit-tokens.u16" "$DATA/cpu-160m.ref" 200 2 256
fi
bench 160m 45
bench 410m 60

# ---- cpt itself on this GPU, when time is left: the bundled CLI on the carried Node, a 160m recipe
if [ "$SIM" != 1 ] && [ -e native/build-cuda/node.xz ] && [ -e dist/cpt/cpt.js ] && [ -e "$DATA/train-160m.yaml" ]; then
  xz -dc native/build-cuda/node.xz >/tmp/cpt-node && chmod +x /tmp/cpt-node &&
    step cpt_train_160m 150 env CPT_DATA="$DATA/kit" /tmp/cpt-node dist/cpt/cpt.js train "$DATA/train-160m.yaml"
fi

[ "$fail" = 0 ] && finish pass || finish FAIL
