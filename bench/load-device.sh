#!/usr/bin/env bash
# Start-up on the GPU in one device call (issue #17). Writes a real Llama-3-8B-shaped bf16 checkpoint (random weights,
# 4 shards of at most 4 GiB, the committed tiny-llama's tokenizer: "Hello" needs only a few ids), then, with the
# page cache warm:
#   1. bench/load.ts: reading every shard, pagoda's load (the start-up line's weights-on-the-GPU seconds and GB/s)
#      and transformers' from_pretrained, appended to bench/RESULTS.md;
#   2. `cat` of the shards, one reader and four at once (whether parallel reads would pay on this host);
#   3. `pagoda run MODEL "Hello" --max-tokens 1 --device cuda` end to end, with an empty kernel cache, then warm;
#   4. transformers: import, load and first token (bench/hf_first_token.py).
# Targets: weights >= 5 GB/s (<= 3 s for 16 GB), first run <= 8 s, warm <= 5 s. About 4-5 minutes.
# Run from the project root after `source .device/env.sh; export PAGODA_FIXTURES=$PWD/.fixtures`; logs go to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
CKPT=${CKPT:-/tmp/pagoda-load-8b}
mkdir -p "$OUT"
LOG="$OUT/load.log"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
secs() {
  local t0 t1
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }'
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"

# 1. Write the checkpoint; pagoda's and transformers' loads (bench/load.ts keeps the checkpoint).
timeout 330 node --import tsx bench/load.ts --config bench/configs/llama3-8b --device cuda --out "$CKPT" --runs 1 --keep \
  --tokenizer test/fixtures/models/tiny-llama/tokenizer.json 2>&1 | tee -a "$LOG" | grep -E '^\||start-up|weights'

# 2. The page cache's own speed.
say "cat, one reader: $(secs sh -c "cat $CKPT/*.safetensors > /dev/null") s"
say "cat, four readers: $(secs sh -c "ls $CKPT/*.safetensors | xargs -P4 -n1 sh -c 'cat \"\$0\" > /dev/null'") s"
say "checkpoint: $(du -sb "$CKPT" | cut -f1) bytes"

# 3. pagoda run end to end: an empty kernel cache, then the same cache warm.
KC=$(mktemp -d)
for run in empty warm; do
  s=$(secs sh -c "PAGODA_KERNEL_CACHE=$KC timeout 120 node bin/pagoda.mjs run $CKPT Hello --max-tokens 1 --device cuda \
    >$OUT/run-$run.out 2>$OUT/run-$run.err")
  say "pagoda run --max-tokens 1, $run kernel cache: $s s"
  grep -E '^(weights:|start-up)' "$OUT/run-$run.err" | tee -a "$LOG"
done

# 4. transformers: import, load, first token.
PYTHONUNBUFFERED=1 timeout 200 python3 bench/hf_first_token.py "$CKPT" 2>&1 | grep -E '^hf ' | tee -a "$LOG"
rm -rf "$CKPT" "$KC"
