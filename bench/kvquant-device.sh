#!/usr/bin/env bash
# The quantized KV cache on the GPU in one device call: its tests (the write kernel's bytes against the CPU twin,
# paged decode and paged-context prefill over fp8 and q8_0 caches against float64, engines under preemption and
# prefix hits, the capacity line) with the attention, engine and KV compression tests; then the attention kernels over
# bf16, fp8 and q8_0 caches (paged decode GQA 32/8, head 128, batch 64 x context 4,096: tokens/s against bf16, target
# fp8 >= 1.8x; flash prefill from the paged context: within 10% of bf16) and stories260K's teacher-forced top-1
# agreement of each cache against the bf16 cache on CUDA (target fp8 >= 97%). Run from the project root after
# `source .device/env.sh; export PAGODA_FIXTURES=$PWD/.fixtures`; logs go to $OUT. With BASE=DIR (a tree of the
# commit before the quantized cache, e.g. `git worktree add .base fcb8900`, carried) the bf16 kernels also run there,
# interleaved with this tree's, to show the 16-bit cache's kernels kept their speed.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
export PAGODA_KERNEL_CACHE=${PAGODA_KERNEL_CACHE:-/tmp/pagoda-kernel-cache}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
timeout ${TEST_TIMEOUT:-420} node --import tsx --test --test-concurrency=1 --test-reporter=spec \
  test/gpu/kv-quant.test.ts test/gpu/cuda-kv-quant-engine.test.ts test/gpu/attention-kernels.test.ts \
  test/gpu/cuda-engine.test.ts test/gpu/kv-compression.test.ts 2>&1 | tee "$OUT/test-gpu.log" | grep -vE '^\s*$' | tail -40
timeout ${BENCH_TIMEOUT:-240} node --import tsx bench/kernels.ts --dtype bf16 --kv-cache-type fp8,q8_0 \
  --json "$OUT/kernels.json" 2>&1 | tee "$OUT/kernels.log" | grep -E "^\||16-bit cache's speed"
if [ -n "${BASE:-}" ]; then
  [ -e "$BASE/node_modules" ] || ln -s "$PWD/node_modules" "$BASE/node_modules"
  for tree in "$BASE" "$PWD" "$BASE" "$PWD"; do
    echo "== bf16 kernels in $tree"
    (cd "$tree" && timeout 120 node --import tsx bench/kernels.ts --dtype bf16 2>&1 | grep -E '^\| pagoda' | grep -E 'auto|warps:8,mTiles:2')
  done | tee "$OUT/bf16-before-after.log"
fi
timeout ${QUALITY_TIMEOUT:-240} node --import tsx bench/kv-cache-quality.ts --device cuda 2>&1 | tee "$OUT/quality.log" |
  grep -E '^\|'
echo '=== summary ==='
grep -E '^ℹ (tests|pass|fail) ' "$OUT/test-gpu.log"
grep -E "paged_decode bf16, (fp8|q8_0) cache GQA 32/8 hd128 B64 ctx4096.*speed|flash_prefill bf16, (fp8|q8_0) cache.*speed" \
  "$OUT/kernels.log"
grep -E '^\| stories260K \| (fp8|q8_0) ' "$OUT/quality.log"
