/**
 * Quantized KV cache quality: each cache type against the float cache (the CPU's f32; with --device cuda the CUDA
 * backend's bf16, where fp8 and q8_0 are built), teacher-forced over the model's own stories (sampled at temperature 1
 * from BOS with the float cache). Per model and type: bytes per cached value, tokens the same memory holds relative
 * to the float cache, top-1 agreement of every step's logits, and the logits' relative L2. stories260K is a trained
 * model; the tiny-*-256 fixtures have random weights, whose near-ties make their top-1 figure noisy (read their
 * relative L2).
 * Usage: npx tsx bench/kv-cache-quality.ts [--device cuda]   Prints the table and appends it to bench/RESULTS.md.
 */
import { join } from 'node:path';
import type { Backend } from '../src/backend/backend.ts';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { isCudaKvQuant } from '../src/backend/cuda/kv-layout.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadModel } from '../src/models/load.ts';
import { KV_QUANT_BYTES, type KvQuant, kvQuantMismatch } from '../src/primitives/kv-cache-type.ts';
import { markdownTable } from '../src/util/markdown.ts';
import { modelFixture } from '../test/helpers/fixtures.ts';
import { kvCacheAgreement, ownStories } from '../test/helpers/kv-cache-agreement.ts';

const STORIES = 8;
const LENGTH = 256;
const onCuda = process.argv.includes('--device') && process.argv[process.argv.indexOf('--device') + 1] === 'cuda';
const float = onCuda ? { name: 'bf16', bytes: 2 } : { name: 'f32', bytes: 4 };
const TYPES = (['fp8', 'q8_0', 'q4_0'] as KvQuant[]).filter((t) => !onCuda || isCudaKvQuant(t));
const header = [
  'model',
  'KV cache',
  'bytes/value',
  `tokens vs ${float.name}`,
  'steps',
  `top-1 = ${float.name}`,
  'logits rel L2',
];
const backend = (): Backend =>
  onCuda
    ? new CudaBackend({ ...settingsFromEnv().cuda, dtype: 'bf16', graphs: false })
    : new CpuBackend({ threads: 1 });
const rows: string[][] = [];
const started = performance.now();
for (const name of ['stories260K', 'tiny-llama-256', 'tiny-qwen2-256']) {
  const fixture = modelFixture(name);
  if (fixture.skip) {
    console.error(`${name}: ${fixture.skip}`);
    continue;
  }
  const model = loadModel(fixture.path, backend());
  const stories = ownStories(model, 1, STORIES, Math.min(LENGTH, model.config.maxPositionEmbeddings));
  for (const type of TYPES) {
    const { numKvHeads, headDim } = model.kvShape;
    if (kvQuantMismatch(type, numKvHeads, headDim)) continue;
    const a = kvCacheAgreement(model, stories, type);
    rows.push([
      name,
      type,
      KV_QUANT_BYTES[type].toFixed(4),
      `${(float.bytes / KV_QUANT_BYTES[type]).toFixed(2)}x`,
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
    name: `Quantized KV cache quality (${onCuda ? 'CUDA' : 'CPU'}, against the ${float.name} cache)`,
    deviceName: onCuda ? 'CUDA' : 'CPU',
    command: `npx tsx bench/kv-cache-quality.ts${onCuda ? ' --device cuda' : ''}`,
    about: `${STORIES} own stories of up to ${LENGTH} tokens per model, teacher-forced; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  },
  header,
  rows,
);
