#!/usr/bin/env bash
# One device call for the attention kernels: NVRTC build + GPU correctness tests, pagoda's timings, PyTorch SDPA
# baselines on the same card, then compute-sanitizer over the tests. Logs go to $OUT (or /tmp/kernels-out).
set -o pipefail
OUT=${OUT:-/tmp/kernels-out}
mkdir -p "$OUT"
export PAGODA_KERNEL_CACHE=/tmp/pagoda-kernel-cache
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv
timeout 420 node --import tsx --test --test-reporter=spec test/gpu/attention-kernels.test.ts \
  test/gpu/attention-sm90a.test.ts 2>&1 | tee "$OUT/test-gpu.log"
timeout 360 node --import tsx bench/kernels.ts --head-dims 64,128,256 2>&1 | tee "$OUT/bench.log"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/sdpa_baseline.py 2>&1 | tee "$OUT/sdpa.log"
if [ "${PROFILE:-1}" = 1 ]; then
  for k in flash_prefill_hd flash_prefill_sm90a paged_decode_hd; do
    timeout 120 ncu --clock-control none --target-processes all -k "regex:$k" -s 2 -c 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section WarpStateStats --section Occupancy --section LaunchStats \
      node --import tsx bench/kernels.ts --profile >"$OUT/ncu-$k.txt" 2>&1
    echo "ncu $k: rc $?"
  done
  for f in "$PAGODA_KERNEL_CACHE"/*.cubin; do
    echo "$(basename "$f"): $(cuobjdump -sass "$f" | grep -oE '\b(HMMA|HGMMA|LDSM|LDGSTS|BAR|MUFU\.EX2|SHFL|LDL|STL)[.A-Z0-9]*' | sed 's/\..*//' | sort | uniq -c | tr '\n' ' ')"
  done | tee "$OUT/sass.txt"
fi
if [ "${SANITIZE:-1}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout 100 compute-sanitizer --tool $tool --print-limit 5 node --import tsx --test \
      test/gpu/attention-kernels.test.ts test/gpu/attention-sm90a.test.ts >"$OUT/sanitize.log" 2>&1
    echo "compute-sanitizer $tool: rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize.log" | tail -1)" |
      tee -a "$OUT/sanitize-summary.txt"
  done
fi
echo '=== summary ==='
grep -E '(tests|pass|fail) [0-9]+$' "$OUT/test-gpu.log"
grep -E '^\|' "$OUT/bench.log" "$OUT/sdpa.log" | sed 's/^[^:]*://'
