"""LitGPT peer of `npm run bench:cpt`: the same continued pre-training job in LitGPT's own trainer.

The HF directory cpt started from is converted with LitGPT's converter; LitGPT's `pretrain`
(Fabric, torch.compile, chunked cross-entropy, its cosine schedule and gradient clipping) then
trains on cpt's packed rows in cpt's order through a small DataModule, so both see the same
tokens, batch and schedule. Rows are seq tokens; LitGPT reads a row as input [:seq-1] and target
[1:], the seq-1 predictions per row cpt makes. Held-out loss: LitGPT's model and cross-entropy on
the rows cpt's monitor uses, for the converted initial weights and the final ones. Prints one JSON line.

--match-cpt sets the two conventions in which LitGPT's trainer differs from cpt's to cpt's: the
learning rate per optimizer step (LitGPT: per micro-batch iteration, from 0) and weight decay on
matrices only (LitGPT: on every parameter, norms and biases too). Everything else stays LitGPT's.
"""
import argparse
import json
import math
import re
import shutil
import sys
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from litgpt.args import EvalArgs, TrainArgs
from litgpt.config import Config
from litgpt.data import DataModule
from litgpt.model import GPT
import litgpt.pretrain as lit_pretrain
from litgpt.pretrain import setup
from litgpt.scripts.convert_hf_checkpoint import convert_hf_checkpoint
from litgpt.utils import chunked_cross_entropy


class Rows(Dataset):
    def __init__(self, path: str, dtype: str, seq: int, limit: int | None = None):
        rows = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<")).reshape(-1, seq)
        self.rows = rows[:limit] if limit else rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return torch.from_numpy(self.rows[i].astype(np.int64))


class PackedRows(DataModule):
    """cpt's packed rows, in file order (cpt's first epoch reads them so)."""

    def __init__(self, train: Rows, val: Rows):
        super().__init__()
        self.train, self.val, self.batch_size = train, val, 1

    def connect(self, tokenizer=None, batch_size: int = 1, max_seq_length=None, **kwargs):
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=False)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size, shuffle=False)


@torch.no_grad()
def heldout(model: str, weights: Path, rows: Rows, seq: int, batch: int) -> float:
    """Mean loss over every prediction of the rows (all rows have seq predictions)."""
    m = GPT(Config.from_name(model))
    m.max_seq_length = seq
    state = torch.load(weights, map_location="cpu", weights_only=False)
    m.load_state_dict(state.get("model", state))
    m.eval()
    total, n = 0.0, 0
    for b in DataLoader(rows, batch_size=batch):
        loss = chunked_cross_entropy(m(b[:, :seq]), b[:, 1 : seq + 1])
        total, n = total + loss.item() * len(b), n + len(b)
    return total / n


def match_cpt(accum: int, warmup: int, steps: int) -> None:
    """cpt's schedule (src/train/schedule.ts lrAt) per optimizer step, and decay on >= 2-D tensors only."""

    def lr_at(learning_rate: float, it: int, warmup_iters: int, max_iters: int, min_lr: float) -> float:
        step = it // accum
        if step < warmup:
            return learning_rate * (step + 1) / warmup
        span = steps - warmup
        p = min(1.0, (step - warmup) / (span - 1)) if span > 1 else 1.0
        return min_lr + 0.5 * (learning_rate - min_lr) * (1 + math.cos(math.pi * p))

    make = lit_pretrain.instantiate_torch_optimizer

    def grouped(optimizer, params, **kwargs):
        params = list(params)
        groups = [{"params": [p for p in params if p.dim() >= 2]}, {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return make(optimizer, groups, **kwargs)

    lit_pretrain.get_lr = lr_at
    lit_pretrain.instantiate_torch_optimizer = grouped


def main() -> None:
    p = argparse.ArgumentParser()
    for k in ("init", "model", "train_bin", "val_bin", "dtype", "out"):
        p.add_argument(f"--{k.replace('_', '-')}", required=True)
    for k in ("seq", "val_rows", "steps", "micro", "accum", "warmup_steps", "threads"):
        p.add_argument(f"--{k.replace('_', '-')}", type=int, required=True)
    for k in ("lr", "min_lr", "wd", "beta1", "beta2", "eps", "clip"):
        p.add_argument(f"--{k.replace('_', '-')}", type=float, required=True)
    p.add_argument("--match-cpt", action="store_true")
    a = p.parse_args()
    if a.match_cpt:
        match_cpt(a.accum, a.warmup_steps, a.steps)
    torch.set_num_threads(a.threads)
    # LitGPT saves hyperparameters.yaml by re-parsing sys.argv as its own `pretrain` command line.
    sys.argv = [sys.argv[0], a.model]

    # LitGPT's converter reads the HF files of a directory named for the model and writes lit_model.pth.
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    ckpt = out / "init" / a.model
    ckpt.mkdir(parents=True)
    for f in Path(a.init).iterdir():
        shutil.copy(f, ckpt / f.name)
    with redirect_stdout(StringIO()):
        convert_hf_checkpoint(ckpt, model_name=a.model)

    seq = a.seq - 1  # LitGPT's max_seq_length: inputs per row
    data = PackedRows(Rows(a.train_bin, a.dtype, a.seq), Rows(a.val_bin, a.dtype, a.seq, a.val_rows))
    val_iters = 2  # LitGPT's own settings check before training; held-out loss is measured below
    log = StringIO()
    t0 = time.perf_counter()

    class Tee(StringIO):
        def write(self, s):
            log.write(s)
            return sys.stderr.write(s)

    with redirect_stdout(Tee()):
        setup(
            model_name=a.model,
            out_dir=out / "run",
            precision="32-true",
            initial_checkpoint_dir=ckpt,
            data=data,
            train=TrainArgs(
                save_interval=None, log_interval=1, global_batch_size=a.micro * a.accum, micro_batch_size=a.micro,
                max_tokens=a.steps * a.micro * a.accum * seq, max_seq_length=seq, max_norm=a.clip, min_lr=a.min_lr,
                lr_warmup_steps=a.warmup_steps, tie_embeddings=False,
            ),
            eval=EvalArgs(interval=10**9, max_iters=val_iters, initial_validation=False, final_validation=False),
            optimizer={"class_path": "torch.optim.AdamW",
                       "init_args": {"lr": a.lr, "weight_decay": a.wd, "betas": [a.beta1, a.beta2], "eps": a.eps}},
            devices=1,
            logger_name="csv",
            seed=0,
        )
    wall = time.perf_counter() - t0
    text = log.getvalue()
    # Step times as LitGPT logs them ("iter time: N ms"), compile and validation excluded; the first
    # optimizer step (torch.compile's warm-up) is left out.
    iters = [float(x) for x in re.findall(r"iter time: ([\d.]+) ms", text)]
    steady = iters[a.accum:] or iters
    tok_s = a.micro * seq / (sum(steady) / len(steady) / 1000) if steady else float("nan")
    print(json.dumps({
        "val_initial": heldout(a.model, ckpt / "lit_model.pth", data.val, seq, a.micro),
        "val_final": heldout(a.model, out / "run" / "final" / "lit_model.pth", data.val, seq, a.micro),
        "tok_s": tok_s,
        "tokens": a.steps * a.micro * a.accum * seq,
        "wall_s": wall,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
