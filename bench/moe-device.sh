#!/usr/bin/env bash
# The Qwen2-MoE and Mixtral fixtures, made where torch and transformers are (the GPU machine), and their CPU golden
# test there. Run from the project root after `source .device/env.sh`; the fixtures come back as $OUT/moe-fixtures.tgz:
# unpack it into test/fixtures/models/ to commit them. About a minute.
set -uo pipefail
OUT=${OUT:-/tmp/pagoda-out}
mkdir -p "$OUT"
python3 test/fixtures/generate-moe.py "$OUT/models" 2>&1 | tee "$OUT/fixtures.log" | tail -4
cp -r "$OUT"/models/tiny-* test/fixtures/models/
tar -czf "$OUT/moe-fixtures.tgz" -C "$OUT/models" . && rm -rf "$OUT/models"
timeout 300 node --import tsx --test --test-reporter=spec test/models/golden.test.ts 2>&1 | tee "$OUT/golden.log" | grep -E 'golden|ℹ (tests|pass|fail)|✖' | tail -30
