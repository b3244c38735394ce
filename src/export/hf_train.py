"""Continued pre-training of a `cpt export --to hf-trainer` directory with the Hugging Face Trainer.

Written next to its inputs by cpt; the loop, the optimizer, distribution (DDP; FSDP or DeepSpeed
through Accelerate) and checkpointing are the Trainer's. Run it under torchrun, one process per
GPU (or per CPU worker: args.json then says use_cpu and the gloo backend):

    torchrun --nproc-per-node G train.py          # one node; train.sbatch does the same per node under Slurm

Inputs (paths relative to this file): base/ the recipe's base model (HF), data/train the packed
rows cpt trains on (a `datasets` directory, input_ids of seq_len tokens, in cpt's order),
data/fin-test and data/pile-test the held-out rows cpt's monitor uses (evaluated as eval_fin-test_loss
and eval_pile-test_loss), args.json the TrainingArguments. A rerun continues from the newest
complete checkpoint in output_dir; the result is an HF directory, output_dir/final.
"""
import os
import shutil
import sys
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, HfArgumentParser, Trainer, TrainingArguments

HERE = Path(__file__).resolve().parent


def rows(split: str):
    return load_from_disk(str(HERE / "data" / split)).with_format("torch")


def collate(batch):
    # Labels are the inputs: the model shifts them, so a row of seq_len tokens gives seq_len - 1 predictions, as in cpt.
    ids = torch.stack([r["input_ids"] for r in batch]).long()
    return {"input_ids": ids, "labels": ids}


def last_complete_checkpoint(out: Path) -> str | None:
    # trainer_state.json is the Trainer's last write to a checkpoint: a job killed while saving leaves
    # a newer directory without it, which must not be resumed from.
    done = [d for d in out.glob("checkpoint-*") if (d / "trainer_state.json").exists()]
    return str(max(done, key=lambda d: int(d.name.split("-")[1]))) if done else None


def main() -> None:
    (args,) = HfArgumentParser(TrainingArguments).parse_json_file(str(HERE / "args.json"))
    out = Path(args.output_dir)
    evals = {s: rows(s) for s in ("fin-test", "pile-test") if (HERE / "data" / s).exists()}
    resume = last_complete_checkpoint(out) if out.exists() else None
    # The model comes from the checkpoint it resumes: transformers 5 renames GPT-NeoX's embed_out to
    # lm_head in from_pretrained only, and the Trainer's own resume (load_state_dict, strict=False)
    # would silently keep the base's output layer.
    model = AutoModelForCausalLM.from_pretrained(resume or HERE / "base", dtype=torch.float32)
    trainer = Trainer(model=model, args=args, train_dataset=rows("train"), eval_dataset=evals or None, data_collator=collate)
    if resume and trainer.is_world_process_zero():
        print(f"resuming from {resume}", file=sys.stderr, flush=True)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()  # run/trainer_state.json: every logged loss, which cpt plot reads
    final = out / "final"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        shutil.copy(HERE / "base" / "tokenizer.json", final / "tokenizer.json")
        print(f"final model: {final}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
