#!/usr/bin/env bash
# FP8 checkpoints in one device call: the tiny FP8 fixtures (three formats) on the GPU in bf16 and f16 against their
# numpy-dequantized references and float32 on the CPU, the engine's start-up line and weight sizing, the refusal of
# --quantization fp8; then `pagoda run` on each fixture through CUDA. Goldens from transformers' own FP8 path are
# still to be written (test/fixtures/generate-fp8.py says where). Run from the project root after
# `source .device/env.sh`; logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,compute_cap,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 300 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/fp8-checkpoints.test.ts \
  test/loader/fp8-checkpoints.test.ts 2>&1 | tee "$OUT/test-fp8.log" | grep -E '✔|✖|ℹ (tests|pass|fail)' | tail -30
for v in block channel tensor; do
  timeout 120 node bin/pagoda.mjs run "test/fixtures/models/tiny-llama-fp8-$v" "Once upon a time" --device cuda \
    --max-tokens 16 2>&1 | tee "$OUT/run-$v.log" | tail -6
done
