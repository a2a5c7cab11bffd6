#!/usr/bin/env bash
# Tensor parallelism in one device call: the tensor-parallel GPU tests (one rank through NCCL bit-identical to the
# plain path on the tiny fixtures, f32 and bf16, decode graphs included; the 2-D copies of the all-gather; the CUDA
# refusals; 2 and 4 ranks, skipped with a message where there are fewer GPUs), the one-GPU engine tests, the CPU
# simulation of 2 and 4 ranks, and `pagoda run` greedy on the plain path and forced through NCCL (the same text).
# Run from the project root after `source .device/env.sh`; logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
# Where NCCL comes only with PyTorch's wheel, put its folder on the loader's path (pagoda names what it tried).
if ! ldconfig -p | grep -q 'libnccl\.so\.2'; then
  dir=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
  [ -n "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-unset} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" | tee "$OUT/env.txt"
timeout 400 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/tensor-parallel.test.ts \
  test/gpu/cuda-engine.test.ts test/models/tensor-parallel.test.ts 2>&1 | tee "$OUT/test-tp.log" |
  grep -E '✔|✖|﹣|ℹ (tests|pass|fail|skipped|todo)' | tail -40
for force in 0 1; do
  PAGODA_TP_FORCE_NCCL=$force timeout 120 node bin/pagoda.mjs run test/fixtures/models/tiny-llama "Once upon a time" \
    --device cuda --max-tokens 16 --temperature 0 >"$OUT/run-force$force.txt" 2>"$OUT/run-force$force.log"
  echo "PAGODA_TP_FORCE_NCCL=$force: rc=$?"
  grep -E 'tensor parallel|error' "$OUT/run-force$force.log"
done
cmp -s "$OUT/run-force0.txt" "$OUT/run-force1.txt" && echo "pagoda run: the same text through NCCL" ||
  echo "pagoda run: the texts differ (see $OUT/run-force*.txt)"
