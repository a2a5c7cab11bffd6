#!/usr/bin/env bash
# Batch-1 and offline figures with async scheduling off (PAGODA_ASYNC_SCHEDULING=0) and on, interleaved in one call:
# `pagoda bench latency` (batch 1, in 128, out 256) on each shape of $SHAPES (config[:quantization]; a config from
# bench/configs or test/fixtures/configs), then `pagoda bench throughput` (nano-vllm's workload) on $THROUGHPUT (a
# config; empty: none). MODES="0 1" by default; MODES=1 runs async scheduling on only. Prints a table; logs go to
# $OUT. Run from the project root on the device after `source .device/env.sh`.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
SHAPES=${SHAPES:-"llama3-8b llama3-8b:q4_k_m llama3-8b:fp8 phi4-mini"}
THROUGHPUT=${THROUGHPUT-llama3-8b}
MODES=${MODES:-"0 1"}
figure() { grep -m1 "^$2" "$1" | sed "s|^$2 *||"; }
config() { [ -d "bench/configs/$1" ] && echo "bench/configs/$1" || echo "test/fixtures/configs/$1"; }
ratio() { node -e "console.log((+process.argv[1] / +process.argv[2]).toFixed(3))" "$1" "$2"; }
# row LABEL LOG-PREFIX FIGURE: the figure of each mode's log, and on / off when both ran.
row() {
  local line="| $1 |" off="" on=""
  for mode in $MODES; do
    local v
    v=$(figure "$2-$mode.log" "$3")
    line="$line $v |"
    if [ "$mode" = 0 ]; then off=$v; else on=$v; fi
  done
  [ -n "$off" ] && [ -n "$on" ] && line="$line $(ratio "$on" "$off") |"
  echo "$line"
}
header="| shape | async scheduling $(echo "$MODES" | sed 's/0/off/; s/1/on/; s/ / | /') |"
[ "$MODES" = "0 1" ] && header="$header on / off |"
echo "$header"
echo "$header" | sed -E 's/[^|]+/---/g'
for s in $SHAPES; do
  cfg=${s%%:*}
  q=${s#"$cfg"}
  q=${q#:}
  for mode in $MODES; do
    env PAGODA_ASYNC_SCHEDULING=$mode timeout 150 node bin/pagoda.mjs bench latency --model "$(config "$cfg")" \
      --device cuda --load-format dummy --batch-size 1 --input-len 128 --output-len 256 --max-model-len 4096 \
      ${q:+--quantization $q} >"$OUT/latency-$cfg${q:+-$q}-$mode.log" 2>&1
  done
  row "$s batch-1 ms/token" "$OUT/latency-$cfg${q:+-$q}" 'ms per output token'
done
if [ -n "$THROUGHPUT" ]; then
  for mode in $MODES; do
    env PAGODA_ASYNC_SCHEDULING=$mode timeout 200 node bin/pagoda.mjs bench throughput --model "$(config "$THROUGHPUT")" \
      --device cuda --load-format dummy --max-model-len 2048 >"$OUT/throughput-$THROUGHPUT-$mode.log" 2>&1
  done
  row "$THROUGHPUT offline output tok/s" "$OUT/throughput-$THROUGHPUT" 'output tokens/s'
fi
