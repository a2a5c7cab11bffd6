#!/usr/bin/env bash
# Embeddings and reranking on the GPU in one device call: the reranker fixtures and their CPU golden test, the GPU
# tests, `pagoda bench embed` on the BERT-base and Qwen3-Embedding-0.6B shapes (dummy bf16 weights, 10,000 inputs of
# 16-512 tokens, offline and through /v1/embeddings with 64 clients) and the sentence-transformers baseline on the
# same inputs. Run from the project root after `source .device/env.sh`; results and logs go to $OUT.
# Usage: [MODELS="bert-base ..."] [RUNNER_THREAD="on off"] bench/embed-device.sh [fixtures] [tests] [bench] [baseline] [host] [all-tests]   (no argument: the first
# four, about 6 minutes; host adds the server's CPU per request and the engine's pipelining on a simulated device,
# about 1 more; all-tests runs the whole `npm run test:gpu`, about 4 more)
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
STAGES=" ${*:-fixtures tests bench baseline} "
has() { [[ "$STAGES" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
MODELS=${MODELS:-"bert-base qwen3-embedding-0.6b"}
if has fixtures; then
  # Writes tiny-{bert,xlmr}-reranker into $OUT/reranker-fixtures.tgz: unpack it into test/fixtures/models/ to commit them.
  python3 test/fixtures/generate-cross-encoder.py "$OUT/models" 2>&1 | tee "$OUT/fixtures.log" | tail -4
  cp -r "$OUT"/models/tiny-*-reranker test/fixtures/models/ 2>/dev/null
  # A call brings back at most 8 files: the two folders come back as one archive.
  tar -czf "$OUT/reranker-fixtures.tgz" -C "$OUT/models" . && rm -rf "$OUT/models"
  timeout 120 node --import tsx --test --test-reporter=spec test/models/reranker-golden.test.ts 2>&1 | tee "$OUT/reranker-golden.log" | tail -12
fi
if has tests; then
  timeout 200 node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/pooling-kernels.test.ts test/gpu/cuda-embeddings.test.ts 2>&1 | tee "$OUT/test-gpu-embed.log" | grep -E 'cosine|✔|✖|ℹ (tests|pass|fail)' | tail -40
fi
if has all-tests; then
  # Every GPU test: the no-cache attention builds share their sources with the paged kernels.
  # The device has Node.js but no npm: test:gpu's own command line.
  timeout 300 node --import tsx --test --test-concurrency=1 --test-reporter=spec $(find test/gpu -name '*.test.ts' | sort) 2>&1 | tee "$OUT/test-gpu.log" | grep -E '^ℹ (tests|pass|fail|skipped)|✖' | tail -20
fi
if has host; then
  # The host side on this machine's idle cores: the server thread's CPU per /v1/embeddings request (rows computed by
  # nothing), then a simulated device of the BERT-base shape's speed (0.9 µs/token, 1.5 ms of host launch work per step).
  timeout 120 node --import tsx bench/embed-server-cost.ts 2>&1 | tee "$OUT/server-cost.log" | tail -1
  timeout 120 node --import tsx bench/embed-server-cost.ts --device-us-per-token 0.9 --launch-us 1500 2>&1 | tee -a "$OUT/server-cost.log" | tail -2
fi
if has bench; then
  # STEP_TOKENS: the step's token budgets to run (8192 is the engine's default on CUDA). Not BUDGET: bench/lease.sh's
  # deadline has that name, and leaked into the budget of a lease's runs until 2026-12-06.
  # RUNNER_THREAD="on off": each with the pooling runner thread and without it, one after the other.
  for m in $MODELS; do
    for t in ${STEP_TOKENS:-8192 16384}; do
      for rt in ${RUNNER_THREAD:-on}; do
        flag=--runner-thread; [ "$rt" = off ] && flag=--no-runner-thread
        timeout 150 node bin/pagoda.mjs bench embed --model "bench/configs/$m" --device cuda --load-format dummy $flag \
          --max-model-len 512 --max-num-batched-tokens "$t" --clients 64 --save "$OUT/embed-$m-$t-$rt.md" 2>&1 |
          tee "$OUT/bench-$m-$t-$rt.log" | tail -12
      done
    done
  done
fi
if has baseline; then
  for m in $MODELS; do
    PYTHONUNBUFFERED=1 timeout 150 python3 bench/st_embed_baseline.py "bench/configs/$m" 2>&1 | tee "$OUT/baseline-$m.log" | tail -8
  done
fi
