#!/usr/bin/env bash
# One device call for the attention kernels: NVRTC build + GPU correctness tests, pagoda's timings, PyTorch SDPA
# baselines on the same card, then compute-sanitizer over the tests. Logs go to $OUT (or /tmp/kernels-out).
set -o pipefail
OUT=${OUT:-/tmp/kernels-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUT/smi.txt"
timeout 240 node --import tsx --test --test-reporter=spec test/gpu/attention-kernels.test.ts 2>&1 | tee "$OUT/test-gpu.log"
timeout 120 node --import tsx bench/kernels.ts --json "$OUT/pagoda.json" 2>&1 | tee "$OUT/bench.log"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/sdpa_baseline.py "$OUT/sdpa.json" 2>&1 | tee "$OUT/sdpa.log"
if [ "${SANITIZE:-1}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout 150 compute-sanitizer --tool $tool --print-limit 5 node --import tsx --test \
      test/gpu/attention-kernels.test.ts >"$OUT/sanitize-$tool.log" 2>&1
    echo "compute-sanitizer $tool: rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize-$tool.log" | tail -1)"
  done
fi
echo '=== summary ==='
grep -E '^# (pass|fail|skipped)' "$OUT/test-gpu.log"
grep -E '^\|' "$OUT/bench.log" "$OUT/sdpa.log" | sed 's/^[^:]*://'
