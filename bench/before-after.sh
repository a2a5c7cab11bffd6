#!/usr/bin/env bash
# One device call: the GPU figures of two trees of the project, interleaved (A B A B), so a refactor can show it did
# not regress. Run from the project root on the device machine after `source .device/env.sh`.
# Usage: bench/before-after.sh BASE_DIR [ROUNDS]
#   BASE_DIR: a copy of the earlier tree (e.g. `git worktree add .base <commit>`, carried); it uses this tree's
#   node_modules. Each round runs `pagoda bench latency` (batch 1, in 128, out 256) and `pagoda bench throughput`
#   (nano-vllm's 256 requests) on the Llama-3-8B-shaped dummy model in both trees; logs go to $OUT.
set -uo pipefail
BASE=${1:?usage: bench/before-after.sh BASE_DIR [ROUNDS]}
ROUNDS=${2:-2}
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
[ -e "$BASE/node_modules" ] || ln -s "$PWD/node_modules" "$BASE/node_modules"
MODEL=$PWD/bench/configs/llama3-8b
COMMON="--model $MODEL --device cuda --load-format dummy --max-model-len 2048"
# The printed table's row after its header: latency's "ms per output token" is its last column, throughput's output
# tokens/s its second.
row() { grep -A2 '^| avg latency\|^| requests/s' "$1" | tail -1; }
for r in $(seq 1 "$ROUNDS"); do
  for tree in base new; do
    dir=$([ $tree = base ] && echo "$BASE" || echo "$PWD")
    (cd "$dir" && timeout 150 node bin/pagoda.mjs bench latency $COMMON --max-num-seqs 64 ${LATENCY_ARGS:-} >"$OUT/latency-$tree-$r.log" 2>&1)
    echo "round $r $tree latency:    $(row "$OUT/latency-$tree-$r.log")"
    (cd "$dir" && timeout 200 node bin/pagoda.mjs bench throughput $COMMON ${THROUGHPUT_ARGS:-} >"$OUT/throughput-$tree-$r.log" 2>&1)
    echo "round $r $tree throughput: $(row "$OUT/throughput-$tree-$r.log")"
  done
done | tee "$OUT/before-after.txt"
