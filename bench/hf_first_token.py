"""transformers' start-up on the same checkpoint pagoda loads (reference only, not pagoda): seconds to import torch and
transformers, to from_pretrained it onto the GPU in bf16, and to the first generated token of a two-token prompt, each
printed as it ends, then the total from the interpreter's start.
Usage: python3 bench/hf_first_token.py CHECKPOINT_DIR
"""
import sys
import time

t0 = time.perf_counter()
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

t1 = time.perf_counter()
print(f"hf import {t1 - t0:.1f} s", flush=True)
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map="cuda")
torch.cuda.synchronize()
t2 = time.perf_counter()
print(f"hf load {t2 - t1:.1f} s", flush=True)
ids = torch.tensor([[1, 15043]], device="cuda")
model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False)
torch.cuda.synchronize()
t3 = time.perf_counter()
print(f"hf first token {t3 - t2:.1f} s", flush=True)
print(f"hf total {t3 - t0:.1f} s", flush=True)
