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
# The figure each benchmark prints on its own line.
figure() { grep -m1 "^$2" "$1" | sed "s|^$2 *||"; }
for r in $(seq 1 "$ROUNDS"); do
  for tree in base new; do
    dir=$([ $tree = base ] && echo "$BASE" || echo "$PWD")
    (cd "$dir" && timeout 150 node bin/pagoda.mjs bench latency $COMMON --max-num-seqs 64 ${LATENCY_ARGS:-} >"$OUT/run.log" 2>&1)
    echo "round $r $tree batch-1 ms per output token: $(figure "$OUT/run.log" 'ms per output token')"
    cat "$OUT/run.log" >>"$OUT/all-runs.log"
    (cd "$dir" && timeout 200 node bin/pagoda.mjs bench throughput $COMMON ${THROUGHPUT_ARGS:-} >"$OUT/run.log" 2>&1)
    echo "round $r $tree offline output tokens/s: $(figure "$OUT/run.log" 'output tokens/s')"
    cat "$OUT/run.log" >>"$OUT/all-runs.log"
  done
done | tee "$OUT/before-after.txt"
