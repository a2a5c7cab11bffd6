#!/usr/bin/env bash
# One device call for KV compression (SnapKV) on the GPU: its kernel tests (LSE, key scores, compaction against an
# explicit float64 softmax) with the attention and engine tests, then the Llama-3.1-8B-shaped dummy with 32 requests
# of a 32k-token prompt, uncompressed and with a 2,048-token budget (one process each: one 8B model in memory at a
# time). Run from the project root on the device machine after `source .device/env.sh`; PAGODA_FIXTURES must point
# at the fixtures. Logs and the results table go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout ${TEST_TIMEOUT:-240} node --import tsx --test --test-concurrency=1 --test-reporter=spec \
  test/gpu/kv-compression.test.ts test/gpu/attention-kernels.test.ts test/gpu/cuda-engine.test.ts test/gpu/cuda-models.test.ts 2>&1 \
  | tee "$OUT/test-gpu.log" | grep -vE '^\s*$' | tail -40
for budget in 0 2048; do
  timeout ${BENCH_TIMEOUT:-300} node --import tsx bench/kv-compression-speed.ts --model bench/configs/llama3.1-8b \
    --device cuda --dummy --prompt 32768 --output 128 --budget $budget --requests ${REQUESTS:-32} \
    --save "$OUT/kv-compression.md" 2>&1 | tee "$OUT/speed-$budget.log" | tail -4
done
