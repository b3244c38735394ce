"""PyTorch peer for native/cuda/verify.sh: the same GPT-NeoX shapes trained on the same GPU with
what a PyTorch user would run: Hugging Face GPTNeoXForCausalLM, bf16 autocast, SDPA attention,
fused AdamW (fp32 master weights). Prints torch_train_tok_s_<shape>= lines.
Usage: python3 anchor_torch.py SHAPE [B] [T] [steps]"""
import sys
import time

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

SHAPES = {"160m": (768, 12, 12), "410m": (1024, 24, 16), "1b": (2048, 16, 8)}


def main() -> None:
    shape = sys.argv[1]
    B = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    T = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    d, layers, heads = SHAPES[shape]
    cfg = GPTNeoXConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * d, vocab_size=50304, rotary_pct=0.25,
                        max_position_embeddings=T, use_parallel_residual=True, tie_word_embeddings=False,
                        attn_implementation="sdpa")
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    print(f"torch_version={torch.__version__}")
    print(f"torch_train_tok_s_{shape}={B * T * steps / sec:.0f}")


if __name__ == "__main__":
    main()
