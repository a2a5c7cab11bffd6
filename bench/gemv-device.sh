#!/usr/bin/env bash
# One device call for the decode GEMV: GPU tests, the per-shape sweep (which writes the table this tree's backend then
# reads), and bench/cuda.ts for a base tree and this one, twice each, interleaved. Run from the project root on the
# device after `source .device/env.sh`, with PAGODA_FIXTURES set. Usage: bench/gemv-device.sh BASE_TREE
# SWEEP_BATCHES (default 1,2,4,8) picks the row counts the sweep measures and writes; CHECK_BATCHES (default none) row
# counts swept without writing the table (cuBLASLt comparison only); BENCH_ARGS the bench's arguments.
set -uo pipefail
BASE=$1
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,temperature.gpu --format=csv,noheader | tee "$OUT/gpu.txt"
t0=$SECONDS
timeout ${TEST_TIMEOUT:-170} node --import tsx --test --test-concurrency=1 $(find test/gpu -name '*.test.ts' | sort) \
  >"$OUT/test-gpu.log" 2>&1
echo "tests rc $? in $((SECONDS - t0)) s"; grep -E '^# (tests|pass|fail|skipped|cancelled)' "$OUT/test-gpu.log"
grep -B2 -A12 '^not ok' "$OUT/test-gpu.log" | head -60
t0=$SECONDS
timeout ${SWEEP_TIMEOUT:-120} node --import tsx bench/gemv-sweep.ts --batches ${SWEEP_BATCHES:-1,2,4,8} \
  --budget-s ${SWEEP_BUDGET:-90} --write-table src/backend/cuda/gemv-table.json >"$OUT/sweep.log" 2>&1
echo "sweep rc $? in $((SECONDS - t0)) s"; cp src/backend/cuda/gemv-table.json "$OUT/" 2>/dev/null
sed -n '/^[A-Z].*SMs, bf16/,$p' "$OUT/sweep.log"
if [ -n "${CHECK_BATCHES:-}" ]; then
  t0=$SECONDS
  timeout ${SWEEP_TIMEOUT:-120} node --import tsx bench/gemv-sweep.ts --batches "$CHECK_BATCHES" \
    --budget-s ${SWEEP_BUDGET:-90} >"$OUT/sweep-check.log" 2>&1
  echo "check sweep rc $? in $((SECONDS - t0)) s"; sed -n '/^[A-Z].*SMs, bf16/,$p' "$OUT/sweep-check.log"
fi
bench() {
  (cd "$1" && timeout ${BENCH_TIMEOUT:-60} node --import tsx bench/cuda.ts bench/configs/llama3-8b \
    ${BENCH_ARGS:---requests 0 --cb-requests 0})
}
for round in 1 2; do
  for tree in "$BASE" .; do
    name=$([ "$tree" = . ] && echo branch || echo base)
    t0=$SECONDS
    bench "$tree" >"$OUT/bench-$name-$round.log" 2>&1
    echo "$name round $round ($((SECONDS - t0)) s): $(grep -E '^\| (batch-1 decode|continuous batching)' "$OUT/bench-$name-$round.log" | cut -c1-110 | tr '\n' ' ')"
  done
done
