#!/usr/bin/env bash
# Checks `cpt export --to neox` with GPT-NeoX's own code, on a CPU:
#   scripts/check-neox.sh NEOX_DIR
# NEOX_DIR: a GPT-NeoX checkout fetched by hand (README names the commit checked). Its Python
# needs (in $NEOX_PYTHON, default python3): torch, deepspeed, 'setuptools<70' (pkg_resources),
# pybind11, ftfy, regex, sentencepiece, transformers. Exports two recipes on the kit's Reuters
# file (the tiny ETS-DACP one, and the same data on Pythia-6.9b's shape for 8 GPUs, where model
# parallelism 2 halves the data-parallel ranks; and the tiny one continuing a model directory),
# then reads each with scripts/neox/check_export.py:
# NeoXArgs as deepy.py builds them, the Megatron reader, GPT2Dataset with training's sample counts.
set -euo pipefail
NEOX=$(cd "${1:?usage: scripts/check-neox.sh NEOX_DIR}" && pwd)
PY=${NEOX_PYTHON:-python3}
cd "$(dirname "$0")/.."
ROOT=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PYDIR=$(dirname "$(command -v "$PY")")
echo "# GPT-NeoX $(git -C "$NEOX" rev-parse --short=8 HEAD 2>/dev/null || echo '(no git)'); $("$PY" -c 'import torch, deepspeed; print(f"torch {torch.__version__}, deepspeed {deepspeed.__version__}")' 2>/dev/null | grep -v WARNING)"
PATH="$PYDIR:$PATH" make -s -C "$NEOX/megatron/data" >/dev/null  # GPT2Dataset's index helpers
KIT=${CPT_DATA:-$ROOT/../shared/data}
recipe() { # NAME INIT MICRO SEQ BATCH METHOD
  cat >"$TMP/$1.yaml" <<YAML
name: $1
method: $6
run_dir: $TMP/runs/$1
data:
  corpus: [{ name: reuters, path: $KIT/corpus/fin/reuters21578, format: reuters-sgml, include: reut2-000.sgm, encoding: latin1 }]
  pile_test: [{ name: hamlet, path: $KIT/corpus/general/gutenberg_nltk/shakespeare-hamlet.txt, format: text }]
  tasks: [fpb]
  prepared_dir: $TMP/prepared
  tokenizer: $KIT/tokenizer/20B_tokenizer.json
selection: { budget: 0.3, seed: 7 }
model: { init: $2 }
train: { micro_batch: $3, seq_len: $4, batch_tokens: $5, max_steps: 20 }
monitor: { every: 5 }
engine: { kind: native }
YAML
}
recipe tiny-ets pythia-14m 4 128 4096 ets-dacp
recipe big-dacp pythia-6.9b 1 2048 65536 dacp
# A continued run: model.init a model directory (a seeded pythia-14m-shaped init saved by cpt).
node_modules/.bin/tsx -e "(async () => { const { initWeights } = await import('./src/model/init.ts'); const { saveModel } = await import('./src/model/load.ts');
  const { presetConfig } = await import('./src/model/presets.ts'); const c = presetConfig('14m'); await saveModel('$TMP/base-14m', c, initWeights(c, 0)); })()"
recipe tiny-cont "$TMP/base-14m" 4 128 4096 ets-dacp
fail=0
for r in tiny-ets:1 big-dacp:8 tiny-cont:1; do
  name=${r%%:*} gpus=${r##*:}
  echo "# $name on $gpus GPU(s)"
  node scripts/cpt.mjs export "$TMP/$name.yaml" --to neox --out "$TMP/$name-neox" --gpus "$gpus" 2>&1 | sed 's/^/  /'
  PATH="$PYDIR:$PATH" PYTHONPATH="$NEOX" "$PY" scripts/neox/check_export.py "$TMP/$name-neox" 2>/dev/null | grep -E '^[a-z0-9_]+=' || fail=1
done
[ "$fail" = 0 ] && echo "check_neox_all=pass" || { echo "check_neox_all=FAIL"; exit 1; }
