/**
 * Where a bf16 forward's distance from the float32 golden logits comes from: the CPU emulation of the device's
 * storage precision (test/helpers/low-precision-cpu.ts) with its rounding points switched on and off, per model.
 * Each cell is the relative L2 of last_logits against golden.json, the largest over the model's prompts (what
 * test/gpu/cuda-models.test.ts asserts), in percent: with round-to-nearest as the device does, then mean ± standard
 * deviation over dithered draws (random errors of rounding's size), since on these chaotic random-weight nets
 * round-to-nearest is one draw and a difference between two configurations smaller than the spread means nothing.
 * No GPU needed.
 * Usage: npx tsx bench/bf16-error.ts [--draws N] [model ...]   (default: 16 draws; tiny-llama tiny-qwen2
 *        tiny-qwen3 stories260K)
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { DType } from '../src/backend/backend.ts';
import { loadModel } from '../src/models/load.ts';
import { markdownTable } from '../src/util/markdown.ts';
import { modelFixture, projectRoot } from '../test/helpers/fixtures.ts';
import { relL2 } from '../test/helpers/gpu.ts';
import {
  CUDA_ROUNDING,
  LowPrecisionCpu,
  ROUNDING_POINTS,
  type RoundingPoint,
} from '../test/helpers/low-precision-cpu.ts';
import { PagedSession } from '../test/helpers/paged-session.ts';

interface Config {
  label: string;
  rounded: readonly RoundingPoint[];
  dtype?: Exclude<DType, 'f32'>;
}

// pre_bias rounds a GEMM output only where that output is itself rounded, so it is switched alone in no row.
const ACTIVATIONS = ROUNDING_POINTS.filter((p) => !['weights', 'fused_residual', 'pre_bias'].includes(p));
const without = (...points: RoundingPoint[]) => CUDA_ROUNDING.filter((p) => !points.includes(p));

const CONFIGS: Config[] = [
  { label: 'nothing rounded (float32)', rounded: [] },
  { label: 'weights only', rounded: ['weights'] },
  ...ACTIVATIONS.map((p) => ({ label: `only ${p} (weights exact)`, rounded: [p] })),
  { label: 'all activations, weights exact', rounded: without('weights') },
  { label: '**CUDA bf16 today** (all but the fused residual)', rounded: CUDA_ROUNDING },
  { label: 'vLLM-like: residual stream bf16 too', rounded: ROUNDING_POINTS },
  ...ACTIVATIONS.map((p) => ({ label: `CUDA today but ${p} float`, rounded: without(p) })),
  { label: 'CUDA, bias inside the GEMM (= pre_bias float)', rounded: without('pre_bias') },
  { label: 'CUDA, logits + final norm float', rounded: without('logits', 'final_norm') },
  { label: 'CUDA, logits + final norm + final residual float', rounded: without('logits', 'final_norm', 'add') },
  { label: 'CUDA but q/k/v + rope + attention float', rounded: without('qkv', 'rope', 'attention') },
  { label: 'weights + logits only', rounded: ['weights', 'logits'] },
  { label: 'fp16 storage, CUDA rounding points', rounded: CUDA_ROUNDING, dtype: 'f16' },
  { label: 'fp16 weights only', rounded: ['weights'], dtype: 'f16' },
];

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
}

/** The largest relative L2 over the prompts, or null when the model has none of the rounding points named. */
function worstError(dir: string, prompts: GoldenPrompt[], c: Config, dither?: number): number | null {
  const backend = new LowPrecisionCpu(c.dtype ?? 'bf16', c.rounded, { dither });
  const model = loadModel(dir, backend);
  let worst = 0;
  for (const p of prompts) {
    const logits = new PagedSession(model, 16).step([{ seq: 0, tokens: p.input_ids }])[0]!;
    worst = Math.max(worst, relL2(logits, p.last_logits));
  }
  const applies = c.rounded.length === 0 || c.rounded.some((p) => backend.seen.has(p));
  return applies ? worst : null;
}

/** Round-to-nearest (what the device does), then the mean and spread over dithered draws, in percent. */
function cell(dir: string, prompts: GoldenPrompt[], c: Config): string {
  const nearest = worstError(dir, prompts, c);
  if (nearest === null) return 'n/a';
  if (DRAWS === 0) return (100 * nearest).toFixed(2);
  const draws = Array.from({ length: DRAWS }, (_, seed) => 100 * worstError(dir, prompts, c, seed + 1)!);
  const mean = draws.reduce((a, x) => a + x, 0) / DRAWS;
  const sd = Math.sqrt(draws.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, DRAWS - 1));
  return `${(100 * nearest).toFixed(2)} (${mean.toFixed(2)} ± ${sd.toFixed(2)})`;
}

const args = process.argv.slice(2);
const drawsAt = args.indexOf('--draws');
const DRAWS = drawsAt >= 0 ? Number(args.splice(drawsAt, 2)[1]) : 16;
// stories260K (trained, from the shared fixtures) shows what the same arithmetic does to a network that is not chaotic.
const requested = args.length ? args : ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'stories260K'];
const names = requested.filter((name) => {
  const { skip } = modelFixture(name);
  if (skip) console.log(`skipped: ${skip}`);
  return !skip;
});
const columns = names.map((name) => {
  const dir = modelFixture(name).path;
  const prompts = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
  return CONFIGS.map((c) => cell(dir, prompts, c));
});
const table = markdownTable(
  ['configuration', ...names],
  CONFIGS.map((c, r) => [c.label, ...columns.map((col) => col[r]!)]),
);
console.log(table);

const command = ['npx tsx bench/bf16-error.ts', ...process.argv.slice(2)].join(' ');
const section = [
  `## bf16 error budget (CPU emulation) — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}. Command: \`${command}\`.`,
  'Relative L2 of last_logits against the float32 golden logits, worst prompt, in percent: round-to-nearest, then',
  `(mean ± sd over ${DRAWS} dithered draws). "n/a": the model has no such rounding point. Rounding points as in`,
  'test/helpers/low-precision-cpu.ts.',
  '',
  table,
  '',
].join('\n');
appendFileSync(join(projectRoot, 'bench', 'RESULTS.md'), `\n${section}`);
