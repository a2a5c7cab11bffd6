#!/usr/bin/env bash
# --quantization fp8 in one device call (compute capability 8.9+): the FP8 GPU tests (device quantization against
# the CPU twin, the norms that write x as e4m3 (bit for bit the separate launch), the FP8 GEMV and GEMM against
# float64, the tiny-*-256 fixtures end to end, FP8 checkpoints) and the
# GEMV's 16-bit regressions; both FP8 decode GEMVs (tensor cores, CUDA cores) per Llama-3-8B shape against the bf16
# GEMV (bench/fp8-gemv.ts: us, GB/s, their builds); Llama-3-8B-shaped (dummy weights) batch-1 latency (fp8 on each
# PAGODA_FP8_GEMV route) and offline nano-vllm throughput, bf16 then fp8 in the same call (targets: fp8 <= 2.6 ms/token, fp8 >= 1.4x bf16's output tok/s; throughput also with
# PAGODA_FP8_CUBLASLT_SCALES=1); FP8 weight quality (stories260K and the tiny fixtures teacher-forced against bf16 on
# the device; the CPU twin's figures are in bench/RESULTS.md).
# Run from the project root after `source .device/env.sh; export PAGODA_FIXTURES=$PWD/.fixtures`; logs go to $OUT.
# Usage: bench/fp8-weights-device.sh [tests] [kernels] [bench] [quality]   (no argument: all four; about 6 minutes)
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
STAGES=" ${*:-tests kernels bench quality} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,compute_cap,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
MODEL=bench/configs/llama3-8b
if has tests; then
  timeout 240 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/fp8-weights.test.ts \
    test/gpu/norm-x-forms.test.ts test/gpu/act-mul-x-forms.test.ts test/gpu/fp8-checkpoints.test.ts 2>&1 | tee "$OUT/test-fp8-weights.log" | grep -E 'agreement|✔|✖|ℹ (tests|pass|fail)' | tail -40
  timeout 120 node --import tsx --test --test-reporter=spec --test-name-pattern='GEMV|gemv|linear' \
    test/gpu/cuda-kernels.test.ts 2>&1 | tee "$OUT/test-gemv.log" | grep -E '✖|ℹ (tests|pass|fail)' | tail -10
fi
if has kernels; then
  timeout 300 node --import tsx bench/fp8-gemv.ts --rows 1,2,4,8 2>&1 | tee "$OUT/fp8-gemv.log" | grep -E '^\|'
  cp bench/RESULTS.md "$OUT/RESULTS.md"
fi
if has bench; then
  # Batch-1 decode, bf16 then fp8 on each decode GEMV route (fp8-cc: CUDA cores), on the same warm card (the target
  # is the fp8 figure; bf16 is its baseline).
  for q in bf16 fp8 fp8-cc; do
    flag=$([[ $q == fp8* ]] && echo "--quantization fp8")
    PAGODA_FP8_GEMV=$([[ $q == fp8-cc ]] && echo cuda-cores || echo tensor-cores) timeout 120 node bin/pagoda.mjs bench latency --model "$MODEL" --device cuda --load-format dummy $flag \
      --batch-size 1 --input-len 128 --output-len 256 --max-model-len 4096 --save "$OUT/fp8-latency.md" 2>&1 \
      | tee "$OUT/latency-$q.log" | tail -4
  done
  # fp8-lt: the FP8 GEMMs' scales applied by cuBLASLt (outer-vector modes) instead of the epilogue kernel.
  for q in bf16 fp8 fp8-lt; do
    flag=$([[ $q == fp8* ]] && echo "--quantization fp8")
    PAGODA_FP8_CUBLASLT_SCALES=$([[ $q == fp8-lt ]] && echo 1 || echo 0) timeout 150 node bin/pagoda.mjs bench \
      throughput --model "$MODEL" --device cuda --load-format dummy $flag --max-model-len 2048 \
      --save "$OUT/fp8-throughput.md" 2>&1 | tee "$OUT/throughput-$q.log" | tail -4
  done
fi
if has quality; then
  timeout 240 node --import tsx bench/fp8-weights-quality.ts cuda 2>&1 | tee "$OUT/quality.log" | tail -12
  cp bench/RESULTS.md "$OUT/RESULTS.md"
fi
