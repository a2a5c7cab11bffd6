#!/usr/bin/env bash
# Async scheduling's worth on one card in one call: `pagoda bench latency` (batch 1, in 128, out 256) with the
# pipeline off (PAGODA_ASYNC_SCHEDULING=0) and on, interleaved, on each shape of $SHAPES (config[:quantization]),
# then `pagoda bench throughput` (nano-vllm's workload) off and on for $THROUGHPUT (a config; empty: none).
# Prints a table; logs go to $OUT. Run from the project root on the device after `source .device/env.sh`.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
SHAPES=${SHAPES:-"llama3-8b llama3-8b:q4_k_m llama3-8b:fp8 phi4-mini"}
THROUGHPUT=${THROUGHPUT:-llama3-8b}
figure() { grep -m1 "^$2" "$1" | sed "s|^$2 *||"; }
config() { [ -d "bench/configs/$1" ] && echo "bench/configs/$1" || echo "test/fixtures/configs/$1"; }
echo "| shape | async scheduling off | on | on / off |"
echo "|---|---|---|---|"
for s in $SHAPES; do
  cfg=${s%%:*}
  q=${s#"$cfg"}
  q=${q#:}
  for mode in 0 1; do
    env PAGODA_ASYNC_SCHEDULING=$mode timeout 150 node bin/pagoda.mjs bench latency --model "$(config "$cfg")" \
      --device cuda --load-format dummy --batch-size 1 --input-len 128 --output-len 256 --max-model-len 4096 \
      ${q:+--quantization $q} >"$OUT/latency-$cfg${q:+-$q}-$mode.log" 2>&1
  done
  off=$(figure "$OUT/latency-$cfg${q:+-$q}-0.log" 'ms per output token')
  on=$(figure "$OUT/latency-$cfg${q:+-$q}-1.log" 'ms per output token')
  echo "| $s batch-1 ms/token | $off | $on | $(node -e "console.log((+process.argv[1] / +process.argv[2]).toFixed(3))" "$on" "$off") |"
done
if [ -n "$THROUGHPUT" ]; then
  for mode in 0 1; do
    env PAGODA_ASYNC_SCHEDULING=$mode timeout 200 node bin/pagoda.mjs bench throughput --model "$(config "$THROUGHPUT")" \
      --device cuda --load-format dummy --max-model-len 2048 >"$OUT/throughput-$THROUGHPUT-$mode.log" 2>&1
  done
  off=$(figure "$OUT/throughput-$THROUGHPUT-0.log" 'output tokens/s')
  on=$(figure "$OUT/throughput-$THROUGHPUT-1.log" 'output tokens/s')
  echo "| $THROUGHPUT offline output tok/s | $off | $on | $(node -e "console.log((+process.argv[1] / +process.argv[2]).toFixed(3))" "$on" "$off") |"
fi
