#!/usr/bin/env bash
# GGUF quantized weights on the GPU in one device call: the quantized kernels (every type, bf16/f16/f32, against the
# CPU codecs and float64 products), the norms that write x quantized (bit for bit the separate launch) and the
# quantized GGUF fixtures end to end against the CPU; then the
# Llama-3-8B shape with dummy weights (random blocks made on the device): batch-1 latency in bf16, Q4_K_M and Q8_0
# (targets: Q4_K_M <= 2.2 ms/token, Q8_0 <= 3.0), a Q4_K_M decode step kernel by kernel, the offline nano-vllm
# workload Q4_K_M vs bf16 (target >= 0.8x), and the time to first token of one 2,048-token prompt Q4_K_M vs bf16
# (target <= 1.3x). About 6 minutes.
# Run from the project root after `source .device/env.sh; export PAGODA_FIXTURES=$PWD/.fixtures`; logs go to $OUT.
# Usage: bench/quant-device.sh [tests] [latency] [profile] [throughput] [ttft]   (no argument: all five)
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
STAGES=" ${*:-tests latency profile throughput ttft} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
MODEL=bench/configs/llama3-8b
COMMON=(--model "$MODEL" --device cuda --load-format dummy --max-model-len 2048)
quant() { [[ "$1" == bf16 ]] || echo "--quantization $1"; }
if has tests; then
  timeout 240 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/quant-kernels.test.ts \
    test/gpu/norm-x-forms.test.ts test/gpu/act-mul-x-forms.test.ts test/gpu/attention-x-forms.test.ts \
    test/gpu/cuda-quantized-models.test.ts 2>&1 | tee "$OUT/test-gpu-quant.log" | grep -E 'relative L2|✔|✖|ℹ (tests|pass|fail)' | tail -60
fi
if has latency; then
  for q in bf16 q4_k_m q8_0; do
    # shellcheck disable=SC2046
    timeout 100 node bin/pagoda.mjs bench latency "${COMMON[@]}" $(quant $q) --max-num-seqs 64 \
      --save "$OUT/quant-latency.md" 2>&1 | tee "$OUT/latency-$q.log" | grep -E 'weights|ms|quantized' | tail -5
  done
fi
if has profile; then
  # Where a Q4_K_M decode step's time goes, kernel by kernel (the quantized GEMV per type and shape).
  timeout 120 node --import tsx bench/decode-profile.ts "$MODEL" q4_k_m 2>&1 | tee "$OUT/profile-q4_k_m.log" | head -40
fi
if has throughput; then
  for q in bf16 q4_k_m; do
    # shellcheck disable=SC2046
    timeout 110 node bin/pagoda.mjs bench throughput "${COMMON[@]}" $(quant $q) \
      --save "$OUT/quant-throughput.md" 2>&1 | tee "$OUT/throughput-$q.log" | tail -8
  done
fi
if has ttft; then
  for q in bf16 q4_k_m; do
    # shellcheck disable=SC2046
    timeout 90 node bin/pagoda.mjs bench latency --model "$MODEL" --device cuda --load-format dummy --max-model-len 4096 \
      $(quant $q) --max-num-seqs 8 --input-len 2048 \
      --output-len 2 --num-iters 5 --save "$OUT/quant-ttft.md" 2>&1 | tee "$OUT/ttft-$q.log" | tail -4
  done
fi
