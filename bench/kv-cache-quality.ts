/**
 * Quantized KV cache quality on the CPU backend: each cache type against the f32 cache, teacher-forced over the
 * model's own stories (sampled at temperature 1 from BOS with the f32 cache). Per model and type: bytes per cached
 * value, tokens the same memory holds relative to f32, top-1 agreement of every step's logits, and the logits'
 * relative L2. stories260K is a trained model; the tiny-*-256 fixtures have random weights, whose near-ties make
 * their top-1 figure noisy (read their relative L2).
 * Usage: npx tsx bench/kv-cache-quality.ts   Prints the table and appends it to bench/RESULTS.md.
 */
import { join } from 'node:path';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { loadModel } from '../src/models/load.ts';
import { KV_QUANT_BYTES, type KvQuant, kvQuantMismatch } from '../src/primitives/kv-cache-type.ts';
import { markdownTable } from '../src/util/markdown.ts';
import { modelFixture } from '../test/helpers/fixtures.ts';
import { kvCacheAgreement, ownStories } from '../test/helpers/kv-cache-agreement.ts';

const STORIES = 8;
const LENGTH = 256;
const TYPES: KvQuant[] = ['fp8', 'q8_0', 'q4_0'];
const header = ['model', 'KV cache', 'bytes/value', 'tokens vs f32', 'steps', 'top-1 = f32', 'logits rel L2'];
const rows: string[][] = [];
const started = performance.now();
for (const name of ['stories260K', 'tiny-llama-256', 'tiny-qwen2-256']) {
  const fixture = modelFixture(name);
  if (fixture.skip) {
    console.error(`${name}: ${fixture.skip}`);
    continue;
  }
  const model = loadModel(fixture.path, new CpuBackend({ threads: 1 }));
  const stories = ownStories(model, 1, STORIES, Math.min(LENGTH, model.config.maxPositionEmbeddings));
  for (const type of TYPES) {
    const { numKvHeads, headDim } = model.kvShape;
    if (kvQuantMismatch(type, numKvHeads, headDim)) continue;
    const a = kvCacheAgreement(model, stories, type);
    rows.push([
      name,
      type,
      KV_QUANT_BYTES[type].toFixed(4),
      `${(4 / KV_QUANT_BYTES[type]).toFixed(2)}x`,
      String(a.steps),
      `${(100 * a.top1).toFixed(1)}%`,
      a.relL2.toExponential(2),
    ]);
  }
}
console.log(markdownTable(header, rows));
appendBenchResult(
  join(import.meta.dirname, 'RESULTS.md'),
  {
    name: 'Quantized KV cache quality (CPU, against the f32 cache)',
    deviceName: 'CPU',
    command: 'npx tsx bench/kv-cache-quality.ts',
    about: `${STORIES} own stories of up to ${LENGTH} tokens per model, teacher-forced; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  },
  header,
  rows,
);
