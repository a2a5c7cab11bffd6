#!/usr/bin/env bash
# One device call: GPU tests, then the GPU benchmark. Run from the project root on the device machine, after
# `source .device/env.sh`; PAGODA_FIXTURES must point at the fixture models. Logs go to $OUT.
# Usage: bench/device-run.sh [tests] [bench] [engine] [cli] [serve] [phi3] [baseline]
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,temperature.gpu --format=csv,noheader | tee "$OUT/gpu.txt"
STAGES_ALL="$*"
has() { [[ " $STAGES_ALL " == *" $1 "* ]]; }
if has tests; then
  timeout ${TEST_TIMEOUT:-240} node --import tsx --test --test-concurrency=1 --test-reporter=spec test/gpu/*.test.ts 2>&1 | tee "$OUT/test-gpu.log" | grep -vE '^\s*$' | tail -60
fi
if has bench; then
  timeout ${BENCH_TIMEOUT:-300} node --import tsx bench/cuda.ts bench/configs/llama3-8b ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
fi
if has engine; then
  # The same offline workload through the engine (pagoda bench throughput): scheduler, device sampling, streaming.
  timeout 300 node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b --device cuda --load-format dummy --max-model-len 2048 --save "$OUT/engine-throughput.md" 2>&1 | tee "$OUT/engine.log" | tail -14
  # Batch-1 latency through the engine (what `pagoda run` and one client of `pagoda serve` see).
  timeout 120 node bin/pagoda.mjs bench latency --model bench/configs/llama3-8b --device cuda --load-format dummy --max-model-len 2048 --max-num-seqs 64 --save "$OUT/engine-latency.md" 2>&1 | tee "$OUT/latency.log" | tail -8
fi
if has cli; then
  # pagoda run on the GPU: a fixture model, then the 8B-shaped dummy (no tokenizer: bytes in, ids out).
  timeout 120 node bin/pagoda.mjs run "$PAGODA_FIXTURES/models/tiny-llama" "Hello" --max-tokens 16 --device cuda --temperature 0 2>&1 | tee "$OUT/run-fixture.log" | tail -8
  timeout 180 node bin/pagoda.mjs run bench/configs/llama3-8b "Hello" --max-tokens 32 --device cuda --load-format dummy --max-num-seqs 64 --max-model-len 4096 2>&1 | tee "$OUT/run-dummy.log" | tail -8
fi
if has serve; then
  # pagoda serve on the GPU: one completion over HTTP from a fixture model and from the 8B dummy.
  for spec in "$PAGODA_FIXTURES/models/tiny-llama|tiny-llama|" "bench/configs/llama3-8b|llama3-8b|--load-format dummy --max-num-seqs 64 --max-model-len 4096"; do
    IFS='|' read -r model name extra <<<"$spec"
    node bin/pagoda.mjs serve -m "$model" --device cuda --port 18080 $extra >"$OUT/serve-$name.log" 2>&1 &
    pid=$!
    node -e '
      const url = "http://127.0.0.1:18080";
      const body = { model: process.argv[1], prompt: "Hello", max_tokens: 8, temperature: 0 };
      (async () => {
        for (let i = 0; i < 120; i++) {
          try {
            const r = await fetch(url + "/v1/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
            console.log("serve", process.argv[1], r.status, (await r.text()).slice(0, 300));
            return;
          } catch { await new Promise((ok) => setTimeout(ok, 1000)); }
        }
        console.log("serve", process.argv[1], "no answer in 120 s");
      })();' "$name" 2>&1 | tee -a "$OUT/serve.txt"
    kill $pid; wait $pid 2>/dev/null
    tail -4 "$OUT/serve-$name.log"
  done
fi
if has phi3; then
  # Phi-3 on the GPU: the LongRoPE fixture with its short and its long factors (compare with its golden.json and
  # golden_long.json greedy_text), then the Phi-4-mini-shaped dummy through the benchmark (head size 128, rotary 96).
  phi=test/fixtures/models/tiny-phi3-longrope
  prompt="The GNU General Public License is a free, copyleft license for"
  timeout 120 node bin/pagoda.mjs run $phi "$prompt" --raw --max-tokens 16 --max-model-len 64 --device cuda 2>&1 | tee "$OUT/run-phi3-short.log" | tail -4
  timeout 120 node bin/pagoda.mjs run $phi "$prompt" --raw --max-tokens 24 --device cuda 2>&1 | tee "$OUT/run-phi3-long.log" | tail -4
  timeout 300 node --import tsx bench/cuda.ts bench/configs/phi4-mini ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-phi4-mini.log"
fi
if has baseline; then
  PYTHONUNBUFFERED=1 python3 bench/hf_baseline.py bench/configs/llama3-8b ${BASELINE_ARGS:-} 2>&1 | tee "$OUT/baseline.log" | tail -20
fi
