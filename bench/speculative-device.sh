#!/usr/bin/env bash
# One device call for speculative decoding on the GPU: its GPU tests, then bench/speculative.ts on the 8B-shaped
# dummy with each proposer interleaved in one process: off, n-gram lookup, the Llama-3.2-1B shape as draft (random
# weights: the mechanism's overhead at about 0% acceptance) and the target as its own draft (the ceiling), at batch 1
# and batch 32; then stories260K (real weights, n-gram lookup on its stories) on the GPU. Run from the project root on
# the device machine after `source .device/env.sh`; PAGODA_FIXTURES must point at the fixtures. Logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout ${TEST_TIMEOUT:-240} node --import tsx --test --test-concurrency=1 --test-reporter=spec \
  test/gpu/cuda-speculative.test.ts 2>&1 | tee "$OUT/test-gpu.log" | grep -vE '^\s*$' | tail -20
# Two 8B copies (target, self-draft) and the 1B draft, each with an 8 GiB KV cache, fit an H200's 141 GB.
for requests in 1 32; do
  timeout ${BENCH_TIMEOUT:-400} node --import tsx bench/speculative.ts --model bench/configs/llama3-8b --device cuda \
    --load-format dummy --prompts random --kv-cache-memory 8GiB --requests $requests --max-tokens 128 --rounds 2 \
    --proposers off,ngram,bench/configs/llama3.2-1b,self 2>&1 | tee "$OUT/speculative-8b-b$requests.log" | tail -6
done
timeout 300 node --import tsx bench/speculative.ts --device cuda --requests 8 --max-tokens 256 --rounds 3 \
  --proposers off,ngram,self 2>&1 | tee "$OUT/speculative-stories.log" | tail -5
cp bench/RESULTS.md "$OUT/RESULTS.md"
