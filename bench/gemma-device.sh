#!/usr/bin/env bash
# Gemma on the GPU in one device call: the kernels Gemma added (gated GELU-tanh, (1 + w) norms, the fused sandwich norm, scale, soft-cap,
# soft-capped and head-size-256 attention) against their CPU twins and the float64 attention reference, tiny-gemma2/3 end to end, then batch-1 latency on
# the gemma-2-9b-, Phi-4-mini- and gemma-3-1b-it-shaped dummies beside the Llama-3-8B one (#13's per-GB ratio), with transformers' batch-1 baseline.
# Run from the project root after `source .device/env.sh`; logs go to $OUT.
# Usage: bench/gemma-device.sh [tests] [bench] [baseline]   (no argument: all three)
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
STAGES=" ${*:-tests bench baseline} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
SHAPES="test/fixtures/configs/gemma-2-9b bench/configs/phi4-mini test/fixtures/configs/gemma-3-1b-it bench/configs/llama3-8b"
if has tests; then
  timeout 400 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/cuda-kernels.test.ts \
    test/gpu/sandwich-norm.test.ts test/gpu/attention-kernels.test.ts test/gpu/cuda-models.test.ts 2>&1 | tee "$OUT/test-gpu-gemma.log" | grep -E 'relative L2|✖|ℹ (tests|pass|fail)' | tail -40
fi
if has bench; then
  for m in $SHAPES; do
    timeout 150 node bin/pagoda.mjs bench latency --model "$m" --device cuda --load-format dummy --max-model-len 2048 \
      --max-num-seqs 64 --save "$OUT/latency-$(basename "$m").md" 2>&1 | tee "$OUT/latency-$(basename "$m").log" | tail -6
  done
fi
if has baseline; then
  for m in $SHAPES; do
    PYTHONUNBUFFERED=1 timeout 200 python3 bench/hf_baseline.py "$m" --cb-requests 0 2>&1 | tee "$OUT/hf-$(basename "$m").log" | tail -6
  done
fi
