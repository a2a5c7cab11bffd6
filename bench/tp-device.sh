#!/usr/bin/env bash
# Tensor parallelism in one device call, until the NCCL path exists: the CUDA refusals (more ranks than devices, else
# NCCL not built yet) on however many GPUs the machine has, the one-GPU path unchanged by the collectives (the CUDA
# engine tests), and the CPU simulation of 2 and 4 ranks on the same machine. Run from the project root after
# `source .device/env.sh`; logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 400 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/tensor-parallel.test.ts \
  test/gpu/cuda-engine.test.ts test/models/tensor-parallel.test.ts 2>&1 | tee "$OUT/test-tp.log" |
  grep -E '✔|✖|ℹ (tests|pass|fail)' | tail -30
for n in 1 2; do
  timeout 120 node bin/pagoda.mjs run test/fixtures/models/tiny-llama "Once upon a time" --device cuda --max-tokens 16 \
    --tensor-parallel-size "$n" 2>&1 | tee "$OUT/run-cuda-tp$n.log" | tail -3
done
