#!/usr/bin/env bash
# A whole device lease (about 30 minutes) in calls of at most 9.5 minutes, most important first. Every GPU test file
# passed on an H100 on 2026-12-06 (seventh lease, part 18 then 7: 28 files, 0 failures; the 256-wide fixtures' call
# too). Since then rope.cu and norm.cu changed (part 20: their tests pass) and the q/k/v GEMV took over RoPE and the
# cache write for decode rows (part 21, eighth lease: its test and the six files it touches pass on an H100). On
# 2026-12-07 the MoE decode kernels (then a pending patch) passed their tests and were merged, and parts 24 and 22
# ran on an H100 (bench/RESULTS.md); the second lease that day ran parts 22 and 7 on an H100 (every GPU test file
# passes); the third ran parts 26 and 27 (bench/NOTES.md: #18 now hinges on the e4m3 GEMMs at 129-256 rows); the
# fourth ran parts 28-30 and 7 on an H100 (FP8 fast accumulation and cuBLASLt's scales made the defaults: #18's offline
# 1.425x bf16; every GPU test file passes on them); the fifth got no H200 and ran part 7 on an H100 (26 files, one
# f32 GELU bound at fault, since rewritten); the sixth (an H100 again) ran part 7 twice: every GPU test file passes
# on tree 4a03890, the GELU bound included. The tenth stop (2026-12-08) had no device and changed elementwise.cu (GELU's
# kernel became \`activation\`, with ReLU²): part 34 first on whatever card comes (its goldens and tests; the eleventh
# stop added MoE experts kept in GGUF blocks on CUDA, never run: part 34 runs their tests first, part 35 their
# figures), then, in order: part 22 on an H200 (the issues' targets are an H200's,
# and gemv-table.json has no H200 table, so every shape there takes the rule: the sweeps write one, then the headline
# figures with it; part 33 is the same cut to a short call); part 32 on any card (cuBLASLt's first pick against its
# other algorithms: whether choosing among them is the next lever for #19's offline figure); part 31 (the MoE shape's
# offline run and #18's FP8 ratio there); then part 11 (the offline run step by step), then 3, 4, 2, 5 (GGUF decode,
# MoE/Gemma/Phi with their baselines, sm_90a prefill and FP8, start-up and tensor parallelism).
# Each part stops its stages at its own deadline and packs what it has: $OUT/logs.tgz (one folder per stage) and
# $OUT/RESULTS.md (bench/RESULTS.md with the rows the stages appended).
# Before the lease, here: `../shared/device/prepare && bench/device-slim.sh` (about 90 s). A call's tree (the tracked
# files, 35.9 MiB on disk on 2026-12-08, plus what it carries) must stay under 64 MiB as the device tool counts it
# (a call of 63.2 MiB in bytes, 65.8 MiB in disk blocks was refused as too large: count with du -sk); .device takes
# ~35.7 MB as prepare writes it, over the limit with the tree alone, and 25.9 MiB slimmed. So the shared fixtures go
# in small sets: .fixtures with models/stories260K alone (1.1 MiB; gguf/stories260K.gguf, 1.1 MiB more, went over by
# 4 KiB at the eleventh stop: check `du -sk` of the three first; the other tiny models are committed) for
# parts 1-5; and the uncommitted tiny-llama-256 and
# tiny-qwen2-256 (15 MB, in .fixtures-256/models) in a call of their own that carries only them, on the still-warm
# machine, copies them into .fixtures/models and runs test/gpu/cuda-models, cuda-quantized-models and fp8-weights
# again (part 1 skips what needs them). The device keeps ignored paths between calls only if .gitignore names them
# (.device, .fixtures, .fixtures-256 are): a folder excluded some other way is gone at the next call, and a carried
# path replaces the device's copy (carrying .fixtures again drops the 256-wide models copied into it). Each call:
# carry [".device", ".fixtures"] and run
#   source .device/env.sh; export PAGODA_FIXTURES=$PWD/.fixtures; bench/lease.sh 7      (then 13, 11, 3, 4, 2, 5)
# Call N+1 right after call N returns (have its command written before): an idle machine goes back after about 30 s,
# a fresh one costs its start, and a refused start costs 80-180 s of the lease: on a day of few machines, wait ten
# minutes or more between tries rather than try again at once.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
L=$OUT/logs
mkdir -p "$L"
export PAGODA_KERNEL_CACHE=${PAGODA_KERNEL_CACHE:-/tmp/pagoda-kernel-cache}
END=$((SECONDS + ${BUDGET:-560}))
pack() { tar czf "$OUT/logs.tgz" -C "$L" . && cp bench/RESULTS.md "$OUT/RESULTS.md"; }
# stage NAME SECONDS COMMAND...: runs with its own $OUT, cut at SECONDS or the part's deadline, whichever is first.
stage() {
  local name=$1 limit=$2 t=$SECONDS
  shift 2
  local left=$((END - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "$name: skipped (no time left)"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  mkdir -p "$L/$name"
  OUT="$L/$name" timeout "$limit" "$@" >"$L/$name.log" 2>&1
  echo "$name: rc=$? in $((SECONDS - t)) s"
  grep -hE '^ℹ (tests|pass|fail|skipped)|✖|^\|' "$L/$name.log" | head -40
  pack
}
# `timeout` runs programs, not shell functions: the suite goes through bash -c.
# The sm_90a prefill kernel's tests run apart, in a stage of their own: a first run of a new barrier protocol may hang.
GPU_TEST="node --import tsx --test --test-concurrency=1 --test-reporter=spec"
GPU_TESTS="$GPU_TEST \$(find test/gpu -name '*.test.ts' ! -name 'attention-sm90a.test.ts' | sort)"
# gpu_tests SECONDS: every GPU test file alone, a line each, those that changed last first (files named in $FIRST,
# space-separated, ahead of the rest); a file that ran is listed in $DONE, so a later call on the same machine goes
# on with the rest (the files the deadline cuts print none).
DONE=/tmp/pagoda-gpu-tests-done
# The GPU test files with an FP8 weight or cache path.
FP8_TESTS="test/gpu/fp8-weights.test.ts test/gpu/fp8-checkpoints.test.ts test/gpu/act-mul-x-forms.test.ts \
test/gpu/norm-x-forms.test.ts test/gpu/qkv-rope-gemv.test.ts test/gpu/kv-quant.test.ts test/gpu/cuda-kv-quant-engine.test.ts"
gpu_tests() {
  local order="${FIRST:-} test/gpu/cuda-embeddings.test.ts test/gpu/moe-kernels.test.ts"
  order="$order test/gpu/act-mul-x-forms.test.ts test/gpu/attention-x-forms.test.ts test/gpu/cuda-engine.test.ts"
  order="$order test/gpu/fp8-weights.test.ts test/gpu/norm-x-forms.test.ts test/gpu/kv-quant.test.ts"
  order="$order test/gpu/tensor-parallel.test.ts $(find test/gpu -name '*.test.ts' | sort)"
  local files
  files=$(echo "$order" | tr ' ' '\n' | grep . | awk '!seen[$0]++' | tr '\n' ' ')
  stage test-gpu "$1" bash -c "touch $DONE; for f in $files; do grep -qx \$f $DONE && continue; l=\$OUT/\$(basename \$f).log; $GPU_TEST \$f > \$l 2>&1; echo \"| \$f | rc=\$? | \$(grep -hE '^ℹ (pass|fail|skipped)' \$l | tr '\n' ' ')\"; grep -h '✖' \$l | head -5; echo \$f >> $DONE; done"
}
nvidia-smi --query-gpu=name,compute_cap,memory.used,memory.total,clocks.sm --format=csv,noheader | tee "$L/gpu.txt"
case ${1:-1} in
1)
  # The suite (every GPU test but the sm_90a kernel's), then #15's open figure: bert-base through /v1/embeddings
  # against offline and sentence-transformers, with the paced second step.
  stage test-gpu 440 bash -c "$GPU_TESTS"
  stage embed-bert 130 env MODELS=bert-base bench/embed-device.sh bench baseline
  ;;
2)
  # #19's sm_90a prefill builds (plain, overlap, ping-pong, rings): their tests, then their speed beside mma.sync and
  # PyTorch's SDPA (FLASH, cuDNN) on the same card; then #18's FP8 GEMV on tensor cores and batch-1 latency.
  stage sm90a 180 bash -c "$GPU_TEST test/gpu/attention-sm90a.test.ts"
  stage kernels 160 bash -c "node --import tsx bench/kernels.ts --dtype bf16 --head-dims 64,128,256 && python3 bench/sdpa_baseline.py"
  stage fp8 230 bench/fp8-weights-device.sh kernels bench
  ;;
3)
  # #12's quantized linear (the integer GEMV's tuning, 9-32 rows, the overlapped prefill path), its latency with x
  # quantized by the norms, throughput and TTFT; then #15's second shape and the XLM-R reranker fixture.
  stage quant-gemv 120 node --import tsx bench/quant-gemv.ts --rows 1,4
  stage quant 230 bench/quant-device.sh profile latency throughput ttft
  stage embed-qwen3 130 env MODELS=qwen3-embedding-0.6b bench/embed-device.sh fixtures bench baseline
  stage kvquant 90 env TEST_TIMEOUT=1 bench/kvquant-device.sh
  ;;
4)
  stage moe 230 bench/moe-device.sh bench profile baseline
  stage gemma 130 bench/gemma-device.sh bench baseline
  # 12 requests (as many as fit uncompressed on an H100): 32 took 101 s uncompressed and cut the budgeted run.
  stage snapkv 120 env TEST_TIMEOUT=1 REQUESTS=12 bench/kv-compression-device.sh
  ;;
5)
  stage load 300 bench/load-device.sh
  stage tp 200 bench/tp-device.sh
  ;;
6)
  # A short lease's one call (what the second lease of 2026-12-06 left): GGUF pooling models on CUDA (never run) and
  # the FP8 GEMV test fixed after it ran, #17's start-up figures (never measured on a GPU), then where the MoE decode
  # step's time goes.
  stage first-tests 120 bash -c "$GPU_TEST test/gpu/cuda-gguf-pooling.test.ts test/gpu/fp8-weights.test.ts"
  stage load 300 bench/load-device.sh
  stage moe-profile 180 bench/moe-device.sh profile
  ;;
7)
  # Every GPU test file on the tree of the day (those part 6 ran are skipped on the same machine), then the MoE
  # shape's speed beside transformers.
  gpu_tests 480
  stage moe 230 bench/moe-device.sh bench baseline
  ;;
8)
  # A short call after kernels merged without a GPU: their tests first (the rope launch with the q/k head norm, which
  # every RoPE model now takes; the MoE step's fused routing and combine; nomic-bert), the MoE step's graph replay
  # after them, then #17's cold page cache (on the 1B shape, whose checkpoint a short call can write).
  stage first-tests 120 bash -c "$GPU_TEST test/gpu/rope-head-norm.test.ts test/gpu/cuda-models.test.ts \
    test/gpu/moe-kernels.test.ts test/gpu/cuda-gguf-pooling.test.ts test/gpu/cuda-embeddings.test.ts"
  stage moe-profile 40 bench/moe-device.sh profile
  stage load-cold 90 env STEPS=cold CONFIG=bench/configs/llama3.2-1b bench/load-device.sh
  ;;
9)
  # The batch-1 step's host time: a V8 profile of `pagoda bench latency` on the 8B shape (Q4_K_M's step replayed its
  # graph in 3.02 ms of its 3.33 ms a token on the H200; the engine's own host work is 0.05 ms, bench/engine-host.ts),
  # then the MoE shape after its launches were fused. First, what changed after part 8 ran, never run on a GPU: the GGUF
  # pooling test's Qwen3-Reranker case, and rope's test at head_dim 80 and 96.
  stage first-tests 80 bash -c "$GPU_TEST test/gpu/cuda-gguf-pooling.test.ts test/gpu/rope-head-norm.test.ts"
  stage step-gaps 110 bash -c "node --import tsx bench/step-gaps.ts && node --import tsx bench/step-gaps.ts bench/configs/llama3-8b q4_k_m"
  stage host-profile 100 bash -c "node --cpu-prof --cpu-prof-dir=\$OUT/prof bin/pagoda.mjs bench latency \
    --model bench/configs/llama3-8b --device cuda --load-format dummy --batch-size 1 --input-len 128 --output-len 256 \
    --max-model-len 4096 && node --import tsx bench/cpuprofile-summary.ts \$OUT/prof/*.cpuprofile --top 30"
  stage moe 200 bench/moe-device.sh bench profile
  ;;
10)
  # Async scheduling (the next decode step launched while one runs, its tokens taken on the device): the engine's GPU
  # tests (the new one compares it with stepping synchronously), then its worth at batch 1 and offline on one card,
  # and where the batch-1 token's time goes now.
  stage first-tests 150 bash -c "$GPU_TEST test/gpu/cuda-engine.test.ts test/gpu/cuda-kv-quant-engine.test.ts \
    test/gpu/cuda-speculative.test.ts ${FIRST:-}"
  stage async 330 bench/async-device.sh
  stage step-gaps 60 node --import tsx bench/step-gaps.ts
  ;;
11)
  # #19's first ask: where the offline throughput run's time goes, step by step (step classes, decode batch sizes,
  # host time between launches, device time from events, the decode steps' read rate), with async scheduling on and
  # off; each appends its table.
  for mode in on off; do
    stage "profile-async-$mode" 200 node --import tsx bench/throughput-profile.ts --model bench/configs/llama3-8b \
      --device cuda --load-format dummy --max-model-len 2048 $([ $mode = off ] && echo --no-async-scheduling) \
      --save bench/RESULTS.md
  done
  ;;
12)
  # The FP8 GEMV on the CUDA cores (W8A16, no x quantization) merged without a GPU: its tests (and the bf16 GEMV's,
  # whose kernel it shares), the two routes side by side at batch-1 shapes with their sweeps, batch-1 latency on each
  # route; then where the offline run's time goes (async scheduling on).
  stage first-tests 150 bash -c "$GPU_TEST test/gpu/fp8-weights.test.ts; $GPU_TEST --test-name-pattern='GEMV|gemv|linear' \
    test/gpu/cuda-kernels.test.ts"
  stage fp8-gemv 130 node --import tsx bench/fp8-gemv.ts --rows 1,4
  stage fp8-latency 80 bash -c "for route in tensor-cores cuda-cores; do PAGODA_FP8_GEMV=\$route node bin/pagoda.mjs \
    bench latency --model bench/configs/llama3-8b --device cuda --load-format dummy --batch-size 1 --input-len 128 \
    --output-len 256 --max-model-len 4096 --quantization fp8 | grep -E 'ms per output token' | sed \"s/^/| \$route /\"; done"
  stage profile 150 node --import tsx bench/throughput-profile.ts --model bench/configs/llama3-8b --device cuda \
    --load-format dummy --max-model-len 2048 --save bench/RESULTS.md
  ;;
13)
  # Merged without a GPU since part 12: the device sampler over vocabulary slices, Gemma's sandwich norms in one
  # launch (add_rms_norm's NORM_X), the FP8 route 'auto' (the CUDA cores for one row). Their tests first, then the
  # batch-1 token outside the graph, then batch-1 and offline figures with async scheduling on.
  stage first-tests 230 bash -c "$GPU_TEST test/gpu/device-sampler.test.ts test/gpu/sandwich-norm.test.ts \
    test/gpu/norm-x-forms.test.ts test/gpu/act-mul-x-forms.test.ts test/gpu/cuda-engine.test.ts; \
    $GPU_TEST --test-name-pattern='sampl|Gemma|gemma' test/gpu/cuda-kernels.test.ts test/gpu/cuda-models.test.ts"
  stage step-gaps 40 node --import tsx bench/step-gaps.ts
  stage latency 250 env MODES=1 SHAPES="llama3-8b llama3-8b:fp8 llama3-8b:q4_k_m gemma-2-9b phi4-mini" \
    bench/async-device.sh
  ;;
14)
  # The decode and model tests (written for the split-KV merge in the last CTA, which measured slower and was
  # reverted: they run on any decode change), then every headline batch-1 figure and the offline one, async on.
  stage first-tests 230 bash -c "$GPU_TEST test/gpu/attention-kernels.test.ts test/gpu/attention-x-forms.test.ts \
    test/gpu/kv-quant.test.ts test/gpu/pdl.test.ts test/gpu/cuda-engine.test.ts test/gpu/cuda-models.test.ts ${FIRST:-}"
  stage latency 300 env MODES=1 SHAPES="llama3-8b llama3-8b:fp8 llama3-8b:q4_k_m llama3-8b:q8_0 gemma-2-9b \
    phi4-mini qwen3-30b-a3b" bench/async-device.sh
  ;;
15)
  # #19's throughput, where a decode step of many sequences spends its time: each kernel and GEMM of a 256-sequence
  # step at the offline run's mean context alone, and its graph at each batch size from 32 to 256 (the cost of
  # padding to a bucket); paged_decode's tile shapes at the offline run's decode shapes; the sampler at 256 rows.
  stage decode-256 100 node --import tsx bench/decode-profile.ts bench/configs/llama3-8b --seqs 256 --context 900 \
    --sweep 32,64,128,160,192,224,256
  stage decode-configs 120 node --import tsx bench/kernels.ts --dtype bf16 --decode-only --decode-configs \
    4:16:3,4:32:2,4:16:2,4:16:4,2:32:2,2:32:3,2:16:3,2:16:4,8:16:2
  stage sampler-256 50 node --import tsx bench/step-gaps.ts bench/configs/llama3-8b --seqs 256
  ;;
16)
  # Graph buckets every 32 sequences past 32 and paged_decode's 16-key tiles three deep as the default: the tree before
  # both (.base: `git archive` of src, bin, package.json and tsconfig.json, carried) against this one, interleaved
  # (batch-1 and offline), then the decode kernels' tests.
  stage before-after 260 bench/before-after.sh .base 2
  stage decode-tests 250 bash -c "$GPU_TEST test/gpu/attention-kernels.test.ts test/gpu/kv-quant.test.ts"
  ;;
17)
  # The sampler's plain rows scored as read, and (on 2026-12-06 with the branch quant-mma merged, since reverted: its
  # kernel ran 0.16-0.98x the dequantize path) GGUF linears of 9-256 rows on tensor cores: the files whose GGUF steps
  # take that route, the offline run in bf16 and Q4_K_M (#12's 0.8x), the sampler at 256 rows, the GEMV table.
  FIRST="test/gpu/quant-kernels.test.ts test/gpu/device-sampler.test.ts test/gpu/cuda-quantized-models.test.ts \
    test/gpu/cuda-gguf-pooling.test.ts test/gpu/cuda-engine.test.ts test/gpu/norm-x-forms.test.ts \
    test/gpu/act-mul-x-forms.test.ts"
  stage first-tests 240 bash -c "for f in $FIRST; do echo \"| \$f |\"; $GPU_TEST \$f 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8; done"
  stage quant 120 bench/quant-device.sh throughput
  stage sampler-256 35 node --import tsx bench/step-gaps.ts bench/configs/llama3-8b --seqs 256
  stage quant-gemv 150 node --import tsx bench/quant-gemv.ts --rows 1
  ;;
18)
  # Every GPU test file (FIRST: what changed last), then where a batch-1 decode step goes on the three shapes whose
  # per-GB ratios #13 compares (Phi-4-mini 1.29x, Gemma-2-9B 1.16x against Llama-3-8B's; target 1.15x).
  gpu_tests 450
  for cfg in phi4-mini llama3-8b test/fixtures/configs/gemma-2-9b; do
    dir=$cfg
    [ -d "bench/configs/$cfg" ] && dir=bench/configs/$cfg
    stage "profile-$(basename "$cfg")" 45 node --import tsx bench/decode-profile.ts "$dir"
  done
  ;;
19)
  # #18's fp8/q8_0 prefill from a paged quantized context against bf16's; #12's Q4_K_M offline run with the fused
  # GEMM at 9-64 rows against PAGODA_QUANT_GEMM=dequantize and bf16; then the headline batch-1 figures.
  stage kv-prefill 90 node --import tsx bench/kernels.ts --dtype bf16 --head-dims 128 --kv-cache-type fp8,q8_0
  stage quant-offline 200 bash -c "bench/quant-device.sh throughput && PAGODA_QUANT_GEMM=dequantize timeout 110 \
    node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b --device cuda --load-format dummy \
    --max-model-len 2048 --quantization q4_k_m | tail -4"
  stage latency 270 env MODES=1 THROUGHPUT= SHAPES="llama3-8b llama3-8b:fp8 llama3-8b:q4_k_m gemma-2-9b phi4-mini" \
    bench/async-device.sh
  ;;
20)
  # Launch latency of the per-layer kernels (#13's per-GB ratios): rope's loads issued before the rotation and the cache
  # write, the norms' weights loaded before the wait (the kernels before them in $AB/old, after in $AB/new), then the
  # decode GEMV swept on Phi-4-mini's and Gemma-2-9B's shapes (the table had Llama-3-8B's only). Batch-1 before, with
  # the kernels, and with the kernels and the table (about 300 s).
  AB=${AB:-.ab}
  use() { cp "$AB/$1"/* src/backend/cuda/kernels/; }
  SHAPES3="llama3-8b gemma-2-9b phi4-mini"
  use old
  stage latency-before 45 env MODES=1 THROUGHPUT= SHAPES="$SHAPES3" bench/async-device.sh
  use new
  stage tests 90 bash -c "$GPU_TEST test/gpu/rope-head-norm.test.ts test/gpu/norm-x-forms.test.ts \
    test/gpu/sandwich-norm.test.ts test/gpu/cuda-models.test.ts test/gpu/cuda-engine.test.ts && $GPU_TEST \
    --test-name-pattern='norm|rope|Norm|RoPE' test/gpu/cuda-kernels.test.ts"
  stage latency-kernels 45 env MODES=1 THROUGHPUT= SHAPES="$SHAPES3" bench/async-device.sh
  stage gemv-sweep 110 bash -c "node --import tsx bench/gemv-sweep.ts --batches 1 --budget-s 85 \
    --models bench/configs/phi4-mini,test/fixtures/configs/gemma-2-9b \
    --write-table src/backend/cuda/gemv-table.json && cp src/backend/cuda/gemv-table.json \$OUT/"
  stage latency-after 45 env MODES=1 THROUGHPUT= SHAPES="$SHAPES3" bench/async-device.sh
  ;;
21)
  # The q/k/v GEMV with RoPE and the cache write as its epilogue (gemv.cu's ROPE build, on the branch rope-gemv-pending:
  # merge it first): its test (bit for bit the composition), the files it touches, then batch-1 on three shapes against
  # the tree before the merge (.base: `mkdir .base && git archive <main before the merge> src bin package.json
  # tsconfig.json | tar x -C .base`, untracked so it travels), interleaved. If qkv-rope-gemv fails, revert the merge.
  FIRST="test/gpu/qkv-rope-gemv.test.ts test/gpu/rope-head-norm.test.ts test/gpu/cuda-models.test.ts \
    test/gpu/tensor-parallel.test.ts test/gpu/cuda-engine.test.ts test/gpu/sandwich-norm.test.ts \
    test/gpu/cuda-gguf-pooling.test.ts"
  stage first-tests 200 bash -c "for f in $FIRST; do echo \"| \$f |\"; $GPU_TEST \$f 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8; done"
  [ -e .base/node_modules ] || ln -s "$PWD/node_modules" .base/node_modules
  stage before-after 240 bash -c "for r in 1 2; do for tree in base new; do dir=\$([ \$tree = base ] && echo .base || echo .); \
    for cfg in bench/configs/llama3-8b test/fixtures/configs/gemma-2-9b bench/configs/phi4-mini; do \
    (cd \$dir && timeout 60 node bin/pagoda.mjs bench latency --model $PWD/\$cfg --device cuda --load-format dummy \
    --batch-size 1 --input-len 128 --output-len 256 --max-model-len 4096 2>&1 | grep -m1 'ms per output token' | \
    awk -v p=\"\$r | \$tree | \$(basename \$cfg)\" '{print \"| \" p \" | \" \$NF \" |\"}'); done; done; done"
  ;;
22)
  # On an H200 (the issues' targets are an H200's, and gemv-table.json had no H200 table, so every shape took the
  # rule): the decode GEMV swept on Llama-3-8B's shapes at 1 and 4 rows and on Phi-4-mini's, Gemma-2-9B's and the MoE
  # shape's at 1, written as this card's table (copied to $OUT), then every headline batch-1 figure and the offline one
  # with it, async scheduling on. $FIRST: test files to run before all that (what changed since part 21 ran).
  [ -n "${FIRST:-}" ] && stage first-tests 120 bash -c "for f in $FIRST; do echo \"| \$f |\"; $GPU_TEST \$f 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8; done"
  # A card that has its table already (an H100) goes straight to the figures.
  if grep -q "\"device\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)\"" src/backend/cuda/gemv-table.json; then
    echo "gemv-sweep: skipped (this card has its table)"
  else
    stage gemv-sweep 150 bash -c "node --import tsx bench/gemv-sweep.ts --batches 1,4 --budget-s 120 \
      --write-table src/backend/cuda/gemv-table.json && cp src/backend/cuda/gemv-table.json \$OUT/"
    stage gemv-sweep-models 110 bash -c "node --import tsx bench/gemv-sweep.ts --batches 1 --budget-s 90 \
      --models bench/configs/phi4-mini,test/fixtures/configs/gemma-2-9b,bench/configs/qwen3-30b-a3b \
      --write-table src/backend/cuda/gemv-table.json && cp src/backend/cuda/gemv-table.json \$OUT/"
  fi
  stage latency 280 env MODES=1 SHAPES="llama3-8b llama3-8b:fp8 llama3-8b:q4_k_m gemma-2-9b phi4-mini \
    qwen3-30b-a3b" bench/async-device.sh
  # What time is left goes to the GPU test files (a later part 7 or 18 on the same machine goes on with the rest).
  gpu_tests 600
  ;;
24)
  # #18's offline figure (FP8 weights: 1.4x bf16's asked) with an FP8 KV cache as well, never measured (the decode
  # step at 256 sequences reads about as many cache bytes as weight bytes); the same cache under bf16 and Q4_K_M (#12)
  # to tell the two halvings apart. Each run in this call, bf16 first.
  for run in "bf16|" "fp8|--quantization fp8" "fp8-kv-fp8|--quantization fp8 --kv-cache-type fp8" \
    "bf16-kv-fp8|--kv-cache-type fp8" "q4_k_m|--quantization q4_k_m" "q4_k_m-kv-fp8|--quantization q4_k_m --kv-cache-type fp8"; do
    stage "offline-${run%%|*}" 90 bash -c "node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b --device cuda \
      --load-format dummy --max-model-len 2048 ${run#*|} 2>&1 | grep -E 'output tokens/s|preemptions|^KV cache' | sed 's/^/| ${run%%|*} | /'"
  done
  ;;
26)
  # #18's last few percent (FP8 weights with an FP8 cache offline: 1.33-1.36x bf16 on an H100 on 2026-12-07, 1.4x
  # asked): where each run's time goes, step class by step class, bf16 first; then #13's MoE shape offline the same way
  # (on an H200 its cache is about three times an H100's, so its many-sequence steps are what to look at).
  # First the FP8 GEMM's scales applied by cuBLASLt (outer-vector scale modes) against the own epilogue kernel, which
  # writes and rereads a bf16 [rows, out] product (~66 MB a layer at 256 rows): measured twice before, 1.15x and 0.99x.
  stage fp8-scales 230 bash -c "for s in 0 1 0 1; do PAGODA_FP8_CUBLASLT_SCALES=\$s timeout 55 node bin/pagoda.mjs \
    bench throughput --model bench/configs/llama3-8b --device cuda --load-format dummy --max-model-len 2048 \
    --quantization fp8 --kv-cache-type fp8 2>&1 | grep -E 'output tokens/s' | sed \"s/^/| cuBLASLt scales \$s | /\"; done"
  for run in "bf16|" "fp8-kv-fp8|--quantization fp8 --kv-cache-type fp8"; do
    stage "profile-${run%%|*}" 150 node --import tsx bench/throughput-profile.ts --model bench/configs/llama3-8b \
      --device cuda --load-format dummy --max-model-len 2048 ${run#*|} --save bench/RESULTS.md
  done
  stage profile-moe 240 node --import tsx bench/throughput-profile.ts --model bench/configs/qwen3-30b-a3b \
    --device cuda --load-format dummy --max-model-len 2048 --save bench/RESULTS.md
  ;;
27)
  # #18: the FP8 + FP8-cache decode step of 256 sequences read 1.79 TB/s where bf16's read 2.34 (part 26's profiles):
  # one step at 256 sequences of ~700 tokens, every kernel timed alone, bf16, FP8 weights, the FP8 cache, and both, to
  # split the gap between the FP8 GEMMs at 256 rows and the fp8-cache decode attention.
  for run in "bf16||" "fp8-weights|fp8|" "fp8-cache||--kv-cache-type fp8" "fp8-both|fp8|--kv-cache-type fp8"; do
    IFS='|' read -r name quant kv <<<"$run"
    stage "step-$name" 90 node --import tsx bench/decode-profile.ts bench/configs/llama3-8b $quant --seqs 256 \
      --context 700 $kv
  done
  ;;
28)
  # #18: cuBLASLt's FP8 fast accumulation (PAGODA_FP8_FAST_ACCUM=1: the e4m3 sums stay in the tensor cores'
  # accumulators along K, as vLLM's FP8 GEMMs keep them) against the float32 promotions of the default. First the FP8
  # GEMM's test with it (its error against the bound), then the FP8 + FP8-cache offline run, bf16 first, then 0/1
  # interleaved, then the 256-sequence decode step with it (part 27's 11.37 ms without).
  stage fp8-test 150 bash -c "$GPU_TEST test/gpu/fp8-weights.test.ts 2>&1 | grep -E '^ℹ (pass|fail)|✖|worst error' | head -30"
  stage offline 300 bash -c "for f in bf16 0 1 0 1; do q='--quantization fp8 --kv-cache-type fp8'; [ \$f = bf16 ] && q=; \
    PAGODA_FP8_FAST_ACCUM=\$f timeout 55 node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b \
    --device cuda --load-format dummy --max-model-len 2048 \$q 2>&1 | grep -E 'output tokens/s' | sed \"s/^/| fast accum \$f | /\"; done"
  stage step-fast-accum 90 env PAGODA_FP8_FAST_ACCUM=1 node --import tsx bench/decode-profile.ts bench/configs/llama3-8b \
    fp8 --seqs 256 --context 700 --kv-cache-type fp8
  ;;
29)
  # After fast accumulation became the default (part 28): the GPU test files with an FP8 path; whether the
  # 256-sequence step is paced by the host (decode-profile's host time per step beside the replay, bf16 and FP8 + FP8
  # cache); then cuBLASLt's scales with fast accumulation, offline, interleaved with the default and bf16.
  stage fp8-tests 260 bash -c "for f in $FP8_TESTS; do echo \"| \$f |\"; $GPU_TEST \$f 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8; done"
  for run in "bf16||" "fp8-both|fp8|--kv-cache-type fp8"; do
    IFS='|' read -r name quant kv <<<"$run"
    stage "step-$name" 60 bash -c "node --import tsx bench/decode-profile.ts bench/configs/llama3-8b $quant --seqs 256 \
      --context 700 $kv 2>&1 | grep -E 'graph replay|^\| (paged|cuBLASLt)'"
  done
  stage offline 200 bash -c "for s in bf16 0 1 0 1 bf16; do q='--quantization fp8 --kv-cache-type fp8'; \
    [ \$s = bf16 ] && q=; PAGODA_FP8_CUBLASLT_SCALES=\$s timeout 55 node bin/pagoda.mjs bench throughput \
    --model bench/configs/llama3-8b --device cuda --load-format dummy --max-model-len 2048 \$q 2>&1 | \
    grep -E 'output tokens/s' | sed \"s/^/| cuBLASLt scales \$s | /\"; done"
  ;;
30)
  # cuBLASLt's FP8 scales on by default (with fast accumulation, part 29: +1.9 % offline): the GPU test files with an
  # FP8 path under the new defaults, then #18's offline figure, bf16 and the new defaults against the old ones
  # (PAGODA_FP8_CUBLASLT_SCALES=0 PAGODA_FP8_FAST_ACCUM=0), interleaved.
  stage fp8-tests 260 bash -c "for f in $FP8_TESTS; do echo \"| \$f |\"; $GPU_TEST \$f 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8; done"
  stage offline 200 bash -c "for r in bf16 new old new old bf16; do q='--quantization fp8 --kv-cache-type fp8'; e=; \
    [ \$r = bf16 ] && q=; [ \$r = old ] && e='PAGODA_FP8_CUBLASLT_SCALES=0 PAGODA_FP8_FAST_ACCUM=0'; \
    env \$e timeout 55 node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b --device cuda \
    --load-format dummy --max-model-len 2048 \$q 2>&1 | grep -E 'output tokens/s' | sed \"s/^/| \$r | /\"; done"
  ;;
31)
  # The H200 figures part 22 leaves out: the MoE shape's offline run with transformers beside it (#13: 5,000 tok/s;
  # its 61 GB of weights leave an H100 little cache), then #18's offline ratio (FP8 weights and cache against bf16,
  # interleaved) on this card.
  stage moe 330 bench/moe-device.sh bench baseline
  stage offline-fp8 200 bash -c "for r in bf16 fp8 bf16 fp8; do q='--quantization fp8 --kv-cache-type fp8'; \
    [ \$r = bf16 ] && q=; timeout 55 node bin/pagoda.mjs bench throughput --model bench/configs/llama3-8b --device cuda \
    --load-format dummy --max-model-len 2048 \$q 2>&1 | grep -E 'output tokens/s' | sed \"s/^/| \$r | /\"; done"
  ;;
32)
  # Whether cuBLASLt's first pick is the fastest of the algorithms its heuristic lists for the 8B shape's GEMMs at
  # 64-256 rows (half the offline run's wall is its 129-256-sequence decode steps, whose bf16 GEMMs ran at 416
  # TFLOP/s on an H100): bf16 and e4m3, and what a step would save with the best.
  stage gemm-algos 110 node --import tsx bench/gemm-algos.ts --budget-s 90
  ;;
33)
  # Part 22 cut to a short call (a lease's last minutes on an H200): the GEMV swept at one row on Llama-3-8B's shapes
  # (this card's table), then the 8B shape's batch-1 figures with it: bf16 (#19), FP8 (#18), Q4_K_M (#12).
  stage gemv-sweep 110 bash -c "node --import tsx bench/gemv-sweep.ts --batches 1 --budget-s 90 \
    --write-table src/backend/cuda/gemv-table.json && cp src/backend/cuda/gemv-table.json \$OUT/"
  stage latency 200 env MODES=1 THROUGHPUT= SHAPES="llama3-8b llama3-8b:fp8 llama3-8b:q4_k_m" bench/async-device.sh
  ;;
34)
  # The families added on 2026-12-08 (tenth stop, no device): transformers' goldens for them, then their CUDA forward
  # against those goldens (the CPU's against them back here), and the kernel changes' tests (elementwise.cu's \`activation\` with ReLU², compiled but
  # never run; moe-kernels' ungated shared expert at decode; the eleventh stop's MoE experts kept in GGUF blocks,
  # moe_quant.cu, and the simple attention's groups past 16 query heads). The fixtures come back in one tarball
  # ($OUT/logs/generate/families.tgz): unpack into test/fixtures/models and commit them (golden-cases.ts lists them).
  NEW="tiny-olmoe tiny-granitemoeshared tiny-stablelm tiny-gpt-bigcode tiny-glm tiny-seed-oss tiny-nemotron tiny-arcee tiny-ernie"
  stage generate 120 bash -c "mkdir -p /tmp/families && python3 test/fixtures/generate-families.py /tmp/families \
    2>&1 | grep -v -i warn | grep -v '^  ' | tail -12; tar czf \$OUT/families.tgz -C /tmp/families $NEW && \
    cp -r \$(printf '/tmp/families/%s ' $NEW) test/fixtures/models/"
  # (The CPU's golden test on them runs back here, once they are unpacked.)
  FIRST="test/gpu/moe-kernels.test.ts test/gpu/cuda-quantized-models.test.ts test/gpu/cuda-kernels.test.ts \
test/gpu/cuda-models.test.ts test/gpu/quant-kernels.test.ts" gpu_tests 600
  ;;
35)
  # MoE experts kept in GGUF blocks on CUDA (eleventh stop): their kernel test first, then the MoE shape's batch-1
  # figure in bf16 and with Q4_K_M experts (random blocks made on the device), the 8B shape's Q4_K_M beside them.
  FIRST="test/gpu/moe-kernels.test.ts"
  stage first-tests 150 bash -c "$GPU_TEST $FIRST 2>&1 | grep -E '^ℹ (pass|fail)|✖' | head -8"
  stage latency 330 env MODES=1 THROUGHPUT= SHAPES="qwen3-30b-a3b qwen3-30b-a3b:q4_k_m llama3-8b:q4_k_m" \
    bench/async-device.sh
  ;;
*)
  echo "usage: bench/lease.sh 1|2|...|35" >&2
  exit 2
  ;;
esac
pack
