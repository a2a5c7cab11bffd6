#!/usr/bin/env bash
# Mixture of experts in one device call: the Qwen2-MoE and Mixtral fixtures made with transformers (they come back as
# $OUT/moe-fixtures.tgz: unpack it into test/fixtures/models/ to commit them) and their CPU goldens; the MoE kernels
# and the fixture models end to end on the GPU; batch-1 latency and offline throughput of the Qwen3-30B-A3B shape
# (dummy bf16 weights, about 61 GB: an H200); a batch-1 decode step of that shape kernel by kernel; transformers on the
# same shape (batch 1 and 32 requests).
# Run from the project root after `source .device/env.sh`; logs go to $OUT.
# Usage: bench/moe-device.sh [fixtures] [tests] [bench] [profile] [baseline]   (no argument: all five)
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
STAGES=" ${*:-fixtures tests bench profile baseline} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
MODEL=bench/configs/qwen3-30b-a3b
if has fixtures; then
  python3 test/fixtures/generate-moe.py "$OUT/models" 2>&1 | tee "$OUT/fixtures.log" | tail -4
  cp -r "$OUT"/models/tiny-* test/fixtures/models/
  tar -czf "$OUT/moe-fixtures.tgz" -C "$OUT/models" . && rm -rf "$OUT/models"
  timeout 300 node --import tsx --test --test-reporter=spec test/models/golden.test.ts 2>&1 | tee "$OUT/golden.log" | grep -E 'golden|ℹ (tests|pass|fail)|✖' | tail -30
fi
if has tests; then
  timeout 300 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/moe-kernels.test.ts test/gpu/cuda-models.test.ts 2>&1 | tee "$OUT/test-gpu-moe.log" | grep -E 'relative L2|✔|✖|ℹ (tests|pass|fail)' | tail -60
fi
if has bench; then
  timeout 200 node bin/pagoda.mjs bench latency --model "$MODEL" --device cuda --load-format dummy --batch-size 1 --input-len 128 --output-len 256 --max-model-len 4096 --save "$OUT/moe-latency.md" 2>&1 | tee "$OUT/latency.log" | tail -10
  timeout 300 node bin/pagoda.mjs bench throughput --model "$MODEL" --device cuda --load-format dummy --num-prompts 256 --input-len-range 100,1024 --output-len-range 100,1024 --max-model-len 2048 --save "$OUT/moe-throughput.md" 2>&1 | tee "$OUT/throughput.log" | tail -12
fi
if has profile; then
  # Where a batch-1 decode step's time goes: moe_router_route, moe_gemv (gate/up), moe_down_combine per layer.
  timeout 180 node --import tsx bench/decode-profile.ts "$MODEL" 2>&1 | tee "$OUT/profile-moe.log" | head -40
fi
if has baseline; then
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/hf_baseline.py "$MODEL" --cb-requests 32 2>&1 | tee "$OUT/baseline.log" | tail -10
fi
