"""PyTorch SDPA baselines (FLASH and CUDNN backends) for bench/kernels.ts, same shapes, same card.

Prefill: causal, head_dim 128 with 16 heads (and 64 / 256 with 32 / 8, the same width), B4 S4096 and B1 S16384
(TFLOP/s, FlashAttention's 4*B*H*S^2*D/2).
Decode: one query, GQA 32/8, head_dim 128, B64 ctx4096 and B256 ctx1024, contiguous K/V (GB/s of K/V read).
Reference only: PyTorch is never part of pagoda.
"""

import json
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention as sdpa


def time_ms(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    rounds = []
    for _ in range(7):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        rounds.append(a.elapsed_time(b) / reps)
    return sorted(rounds)[3]


rows = []
backends = [("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION)]
for batch, seq, hd in [(b, s, d) for b, s in [(4, 4096), (1, 16384)] for d in (64, 128, 256)]:
    heads = 16 * 128 // hd
    q, k, v = (torch.rand(batch, heads, seq, hd, device="cuda", dtype=torch.bfloat16) * 2 - 1 for _ in range(3))
    flops = 4 * batch * heads * seq * seq * hd / 2
    shape = f"causal hd{hd} B{batch} S{seq} H{heads}"
    for name, be in backends:
        try:
            with sdpa_kernel(be):
                ms = time_ms(lambda: sdpa(q, k, v, is_causal=True), 5)
            rows.append((f"torch SDPA {name}", shape, ms, flops / ms / 1e9, "TFLOP/s"))
        except Exception as e:  # a backend that refuses the shape is reported, not fatal
            rows.append((f"torch SDPA {name}", shape, float("nan"), float("nan"), str(e).splitlines()[0][:80]))
    del q, k, v

for batch, ctx in [(64, 4096), (256, 1024)]:
    q = torch.rand(batch, 32, 1, 128, device="cuda", dtype=torch.bfloat16) * 2 - 1
    k, v = (torch.rand(batch, 8, ctx, 128, device="cuda", dtype=torch.bfloat16) * 2 - 1 for _ in range(2))
    kv_bytes = batch * ctx * 8 * 128 * 2 * 2
    for name, be in backends:
        shape = f"GQA 32/8 hd128 B{batch} ctx{ctx} (contiguous)"
        try:
            with sdpa_kernel(be):
                ms = time_ms(lambda: sdpa(q, k, v, enable_gqa=True), 20)
            rows.append((f"torch SDPA {name}", shape, ms, kv_bytes / ms / 1e6, "GB/s KV"))
        except Exception as e:
            rows.append((f"torch SDPA {name}", shape, float("nan"), float("nan"), str(e).splitlines()[0][:80]))
    del q, k, v

print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__})")
print("| kernel | shape | ms | figure |")
print("|---|---|---|---|")
for kernel, shape, ms, fig, unit in rows:
    print(f"| {kernel} | {shape} | {ms:.3f} | {fig:.0f} {unit} |")
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=2)
