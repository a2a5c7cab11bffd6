#!/usr/bin/env bash
# One device call for structured output on the GPU: the sampling kernels' tests (the bitmask test among them), then
# the same 64 concurrent requests on the 8B-shaped dummy unconstrained and under a JSON schema (GPT-2's vocabulary
# padded to the model's width), interleaved in one process. Run from the project root on the device machine after
# `source .device/env.sh`; PAGODA_FIXTURES must point at the fixtures (the GPT-2 vocabulary GGUF). Logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout ${TEST_TIMEOUT:-300} node --import tsx --test --test-concurrency=1 --test-reporter=spec \
  --test-name-pattern='sampl|bitmask|engine' test/gpu/cuda-kernels.test.ts test/gpu/cuda-engine.test.ts 2>&1 \
  | tee "$OUT/test-gpu.log" | grep -vE '^\s*$' | tail -30
timeout ${BENCH_TIMEOUT:-400} node --import tsx bench/structured-output.ts --model bench/configs/llama3-8b \
  --device cuda --load-format dummy --vocab gpt2 --grammar schema --requests 64 --max-tokens 256 --rounds 4 2>&1 \
  | tee "$OUT/structured-bench.log" | tail -8
cp bench/RESULTS.md "$OUT/RESULTS.md"
