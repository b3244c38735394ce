"""Reads a `cpt export --to neox` directory with GPT-NeoX's own code (run by scripts/check-neox.sh):
its argument parsing as deepy.py does (NeoXArgs.from_ymls with the export's GPU count), its
Megatron dataset reader, and GPT2Dataset built with the sample counts GPT-NeoX's training asks for.
Prints name=value lines; exits 1 when something disagrees with export.json.
  python check_export.py EXPORT_DIR         (GPT-NeoX's checkout on PYTHONPATH)"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402

out = sys.argv[1]
manifest = json.load(open(os.path.join(out, "export.json")))
ok = True


def check(name, got, want):
    global ok
    good = got == want
    ok &= good
    print(f"{name}={'pass' if good else 'FAIL'} ({got!r}{'' if good else f', expected {want!r}'})")


from megatron.neox_arguments import NeoXArgs  # noqa: E402

a = NeoXArgs.from_ymls([os.path.join(out, "neox.yml")], overwrite_values={"global_num_gpus": manifest["gpus"]})
check("neox_precision", a.precision, "bfloat16")
# A model directory is converted into checkpoints/ (its hf-cache entry beside); a preset is a fresh
# initialisation, which NeoX makes itself: nothing to load.
continued = os.path.isdir(os.path.join(out, "hf-cache"))
check("neox_load", a.load, os.path.join(out, "checkpoints") if continued else None)
check("neox_finetune", bool(a.finetune), continued)
check("neox_tokens_per_iteration", a.train_batch_size * a.seq_length, manifest["tokens_per_iteration"])
check("neox_train_iters", a.train_iters, manifest["train_iters"])
check("neox_test_split", bool(a.test_data_paths), True)

from megatron.data.indexed_dataset import make_dataset  # noqa: E402

for split in ("train", "valid", "test"):
    f = manifest["files"][split]
    if f is None:
        continue
    d = make_dataset(os.path.join(out, f["prefix"]), "mmap", skip_warmup=True)
    check(f"reader_{split}_docs", len(d), f["docs"])
    check(f"reader_{split}_tokens", int(d.sizes.sum()), f["tokens"])

# GPT2Dataset as training builds it: train_iters x global batch samples, evaluation likewise. It
# all-reduces a count over ranks in a CUDA tensor; here one rank, on the CPU (gloo).
torch.distributed.init_process_group("gloo", init_method="tcp://127.0.0.1:29517", rank=0, world_size=1)
torch.cuda.LongTensor = torch.LongTensor
from megatron import mpu  # noqa: E402

mpu.initialize_model_parallel(1)
from megatron.data.data_utils import build_the_dataset  # noqa: E402

eval_iters = (a.train_iters // a.eval_interval + 1) * a.eval_iters
wanted = {"train": a.train_iters * a.train_batch_size, "valid": eval_iters * a.train_batch_size, "test": a.eval_iters * a.train_batch_size}
paths = {"train": a.train_data_paths[0], "valid": a.valid_data_paths[0], "test": a.test_data_paths[0]}
for split, n in wanted.items():
    ds = build_the_dataset(paths[split], None, None, split, a.data_impl, a.pack_impl, "gpt2", a.allow_chopped, n, None,
                           a.seq_length, a.seed, skip_warmup=True)
    sample = ds[0]["text"]
    # Training must get every sample it asks for; evaluation takes what a small held-out set has.
    if split == "train":
        check("gpt2dataset_train_samples", len(ds) >= n, True)
    print(f"gpt2dataset_{split}_samples={len(ds)} of {n} asked")
    check(f"gpt2dataset_{split}_sample_length", len(sample), a.seq_length + 1)
    epochs = n * a.seq_length / max(1, int(ds.indexed_dataset.sizes.sum()))
    print(f"gpt2dataset_{split}_epochs={epochs:.2f}")
print(f"check_neox={'pass' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
