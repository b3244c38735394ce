"""PyTorch peer of cpt's engine benchmarks: what a user would run instead, on the same device.
Hugging Face GPTNeoXForCausalLM (Pythia shapes: parallel residual, rotary 25%, untied, exact
GELU), SDPA attention, fused AdamW, bf16 autocast when asked, torch.compile when asked and it
works here (falls back to eager and says so). Prints one line of name=value figures.
  npm run bench:engine (CPU):        SHAPE SEQ BATCH STEPS fp32|bf16 compile|eager cpu
  native/cuda/verify.sh (the GPU):   SHAPE SEQ BATCH STEPS bf16 eager cuda"""
import os
import sys
import time

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

SHAPES = {"14m": (128, 6, 4), "70m": (512, 6, 8), "160m": (768, 12, 12), "410m": (1024, 24, 16), "1b": (2048, 16, 8)}
shape, T, B, steps, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
want_compile = (sys.argv[6] if len(sys.argv) > 6 else "compile") == "compile"
device = sys.argv[7] if len(sys.argv) > 7 else "cpu"
if device == "cpu":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
D, L, H = SHAPES[shape]
cfg = GPTNeoXConfig(hidden_size=D, num_hidden_layers=L, num_attention_heads=H, intermediate_size=4 * D,
                    vocab_size=50304, rotary_pct=0.25, max_position_embeddings=max(2048, T),
                    use_parallel_residual=True, tie_word_embeddings=False, attn_implementation="sdpa")
torch.manual_seed(0)
model = GPTNeoXForCausalLM(cfg).to(device).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
ids = torch.randint(0, cfg.vocab_size, (B, T), device=device)
autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16")


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


def loss_of(m):
    with autocast:
        return m(input_ids=ids, labels=ids).loss


def score_of(m):
    with torch.no_grad(), autocast:
        return m(input_ids=ids).logits


mode = "eager"
run = model
if want_compile:
    try:
        compiled = torch.compile(model)
        loss_of(compiled).backward()  # compile and check that it runs
        opt.zero_grad(set_to_none=True)
        score_of(compiled)
        run, mode = compiled, "compiled"
    except Exception as e:  # noqa: BLE001 - any compiler failure means eager
        print(f"torch.compile failed, eager: {type(e).__name__}: {str(e).splitlines()[0][:200]}", file=sys.stderr)


def step():
    loss = loss_of(run)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def timed(fn):
    fn()  # warm-up: allocation, kernel selection
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return (time.perf_counter() - t0) / steps


train = timed(step)
score = timed(lambda: score_of(run))
print(f"torch={torch.__version__} device={device} threads={torch.get_num_threads()} mode={mode} dtype={dtype} "
      f"train_tok_s={B * T / train:.0f} fwd_tok_s={B * T / score:.0f}")
