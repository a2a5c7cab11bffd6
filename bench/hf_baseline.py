"""Hugging Face transformers baselines for bench/cuda.ts, run in the same device call (reference only, not pagoda).

Same Llama-3-8B-shaped model with random bf16 weights made on the GPU from config.json:
  1. batch-1 greedy decode latency with generate() (sdpa), ms per output token;
  2. continuous batching (generate_batch, paged attention) on a reduced nano-vllm-style workload
     (--cb-requests requests, inputs uniform 100..1024, --cb-out output tokens each), output tok/s.
"""
import argparse
import random
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("--batch1-tokens", type=int, default=64)
p.add_argument("--cb-requests", type=int, default=32)
p.add_argument("--cb-out", type=int, default=256)
a = p.parse_args()

cfg = AutoConfig.from_pretrained(a.config)
torch.manual_seed(0)
t0 = time.perf_counter()
with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
model.eval()
torch.cuda.synchronize()
print(f"hf load {time.perf_counter() - t0:.1f} s", flush=True)
rows = []

ids = torch.randint(0, cfg.vocab_size, (1, 128), device="cuda")
n = a.batch1_tokens
with torch.no_grad():
    kw = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
    model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)
    torch.cuda.synchronize()
    t = time.perf_counter()
    model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
    torch.cuda.synchronize()
    prefill = time.perf_counter() - t
    t = time.perf_counter()
    out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
    torch.cuda.synchronize()
    total = time.perf_counter() - t
ms = (total - prefill) / (out.shape[1] - 128 - 1) * 1000
rows.append(("batch-1 decode, ms per output token (ctx 128..)", f"{ms:.2f}", f"generate(), sdpa, {n} tokens"))
print(f"hf batch-1: {ms:.2f} ms/token", flush=True)

random.seed(12345)
inputs = [[random.randrange(cfg.vocab_size) for _ in range(random.randint(100, 1024))] for _ in range(a.cb_requests)]
for impl in ("paged|sdpa", "sdpa_paged"):
    try:
        model.set_attn_implementation(impl)
        gc = GenerationConfig(max_new_tokens=a.cb_out, do_sample=True, temperature=0.6, eos_token_id=-1, pad_token_id=0)
        torch.cuda.synchronize()
        t = time.perf_counter()
        res = model.generate_batch(inputs=inputs, generation_config=gc, progress_bar=False)
        torch.cuda.synchronize()
        s = time.perf_counter() - t
        toks = sum(len(r.generated_tokens) for r in res.values())
        rows.append((f"continuous batching, {a.cb_requests} requests, in 100..1024, out {a.cb_out}, output tok/s", f"{toks / s:.0f}", f"generate_batch, {impl}, {toks} tokens in {s:.1f} s"))
        print(f"hf cb ({impl}): {toks / s:.0f} tok/s", flush=True)
        break
    except Exception as e:  # noqa: BLE001 - report and try the other spelling
        print(f"hf cb with {impl} failed: {type(e).__name__}: {e}", flush=True)

print(f"\n| {torch.cuda.get_device_name()} | transformers {__import__('transformers').__version__} | notes |\n|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} |")
