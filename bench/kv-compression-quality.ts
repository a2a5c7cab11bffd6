/**
 * KV compression quality on a real model (CPU backend): SnapKV beside two naive baselines, keeping the most recent
 * tokens and keeping evenly spaced tokens, at budgets of 25%, 50% and 75% of the prompt.
 * Usage: npx tsx bench/kv-compression-quality.ts [model-dir]   (default: stories260K from the shared fixtures)
 *
 * The prompts are the model's own stories (sampled at temperature 1 from BOS, one per seed, so the text is in its
 * distribution), split into a prompt and a held-out continuation. Per method and budget: the log-likelihood of the
 * true continuation (teacher-forced after the compressed prefill; its first token, predicted by the prefill that saw
 * everything, is left out), and greedy agreement with full KV (greedy tokens equal position by position, and the
 * share before the first difference). Prints the table and appends it to bench/RESULTS.md.
 */
import { join } from 'node:path';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { loadModel } from '../src/models/load.ts';
import { SNAPKV, snapKvWindow } from '../src/primitives/kv-compression.ts';
import { ModelRunner } from '../src/runner/model-runner.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';
import { markdownTable } from '../src/util/markdown.ts';
import { mulberry32 } from '../src/util/random.ts';

const BLOCK = 16;
const SEEDS = 24;
const GREEDY = 32;
const BUDGETS = [0.25, 0.5, 0.75];
const METHODS = ['snapkv', 'recent', 'even'] as const;
type Method = (typeof METHODS)[number];

const root = join(import.meta.dirname, '..');
const dir = process.argv[2] ?? join(root, '..', 'shared', 'fixtures', 'models', 'stories260K');
const model = loadModel(dir, new CpuBackend({ threads: 1 }));
const { vocabSize, maxPositionEmbeddings } = model.config;
// The context is short (stories260K: 512 positions): three quarters prompt, the rest continuation.
const PROMPT = Math.floor((maxPositionEmbeddings * 3) / 4);
const CONTINUATION = Math.min(64, maxPositionEmbeddings - PROMPT);
const perSeq = Math.ceil((PROMPT + CONTINUATION) / BLOCK);
const runner = new ModelRunner(model, SEEDS * perSeq, BLOCK);
const blocksOf = (i: number) => Array.from({ length: perSeq }, (_, b) => i * perSeq + b);
const rows = (n: number) => Array.from({ length: n }, (_, i) => i);

function logSoftmax(x: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** One story per seed from BOS at temperature 1, all seeds in one batch per step. */
function sampleStories(): number[][] {
  const rngs = rows(SEEDS).map((s) => mulberry32(1000 + s));
  const stories = rows(SEEDS).map(() => [1]);
  let done = 0;
  while (stories[0]!.length < PROMPT + CONTINUATION) {
    const chunks = stories.map((s, i) => ({
      tokenIds: s.slice(done),
      startPos: done,
      blockTable: blocksOf(i),
      logits: 'last' as const,
    }));
    const logits = runner.execute(chunks, []).toHost(rows(SEEDS));
    done = stories[0]!.length;
    stories.forEach((s, i) => {
      const p = logSoftmax(logits.subarray(i * vocabSize, (i + 1) * vocabSize));
      let u = rngs[i]!();
      let t = 0;
      while (t < vocabSize - 1 && (u -= Math.exp(p[t]!)) > 0) t++;
      s.push(t);
    });
  }
  return stories;
}

/** Prompt positions a naive method keeps: the last `budget`, or `budget` evenly spaced ones (ends included). */
function naiveKeep(method: Exclude<Method, 'snapkv'>, budget: number): number[] {
  if (method === 'recent') return rows(budget).map((i) => PROMPT - budget + i);
  return rows(budget).map((i) => Math.round((i * (PROMPT - 1)) / (budget - 1)));
}

interface Run {
  /** Mean log-likelihood per continuation token (nats), its first token left out. */
  ll: number;
  greedy: number[];
}

/** A story's prompt prefilled (compressed by `method` to `budget` entries), then scored and decoded greedily. */
function evaluate(story: number[], method: Method | 'full', budget: number): Run {
  const prompt = story.slice(0, PROMPT);
  const cont = story.slice(PROMPT, PROMPT + CONTINUATION);
  const blockTable = blocksOf(0);
  const plan = { window: snapKvWindow(budget, PROMPT), budget };
  const prefill: ScheduledChunk = { tokenIds: prompt, startPos: 0, blockTable, logits: 'last' };
  const first = runner.execute([method === 'snapkv' ? { ...prefill, compress: plan } : prefill], []).toHost([0]);
  if (method === 'recent' || method === 'even') {
    // The same compaction SnapKV's step performs, with the baseline's choice of entries for every KV head.
    const step = model.backend.beginStep(buildStepBatch([{ ...prefill, compress: plan }], BLOCK));
    const keep = naiveKeep(method, budget);
    const all = Int32Array.from(rows(model.kvShape.numKvHeads).flatMap(() => keep));
    for (const layer of runner.kvCache) model.backend.compactKv(layer, all, step);
  }
  const cached = method === 'full' ? PROMPT : budget;
  const at = (i: number) => ({ startPos: PROMPT + i, cached: cached + i, blockTable });
  const forced = runner
    .execute([{ tokenIds: cont.slice(0, -1), ...at(0), logits: 'all' }], [])
    .toHost(rows(CONTINUATION - 1));
  let ll = 0;
  for (let i = 0; i + 1 < CONTINUATION; i++) {
    ll += logSoftmax(forced.subarray(i * vocabSize, (i + 1) * vocabSize))[cont[i + 1]!]!;
  }
  // Greedy from the compressed cache again: entries from `cached` on are rewritten before they are read.
  const greedy = [argmax(first)];
  for (let i = 0; greedy.length < GREEDY; i++) {
    greedy.push(argmax(runner.execute([{ tokenIds: [greedy[i]!], ...at(i), logits: 'last' }], []).toHost([0])));
  }
  return { ll: ll / (CONTINUATION - 1), greedy };
}

const started = performance.now();
const stories = sampleStories();
const full = stories.map((s) => evaluate(s, 'full', PROMPT));
const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
const fullLl = mean(full.map((r) => r.ll));
const header = [
  'method',
  'budget',
  'KV entries kept',
  'LL/token (nats)',
  'Δ vs full',
  'greedy tokens equal',
  'greedy before 1st diff',
];
const results: string[][] = [['full KV', '100%', String(PROMPT), fullLl.toFixed(4), '0', '100%', '100%']];
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
for (const fraction of BUDGETS) {
  const budget = Math.ceil(fraction * PROMPT);
  for (const method of METHODS) {
    const runs = stories.map((s) => evaluate(s, method, budget));
    const ll = mean(runs.map((r) => r.ll));
    const same = runs.map((r, i) => mean(r.greedy.map((t, j) => (t === full[i]!.greedy[j] ? 1 : 0))));
    const prefix = runs.map((r, i) => {
      const d = r.greedy.findIndex((t, j) => t !== full[i]!.greedy[j]);
      return (d < 0 ? GREEDY : d) / GREEDY;
    });
    results.push([
      method,
      pct(fraction),
      String(budget),
      ll.toFixed(4),
      (ll - fullLl).toFixed(4),
      pct(mean(same)),
      pct(mean(prefix)),
    ]);
  }
}
console.log(markdownTable(header, results));
const about =
  `${dir.split('/').at(-1)}, ${SEEDS} stories of its own (temperature 1, seeds 1000..${999 + SEEDS}): prompt ${PROMPT} tokens, ` +
  `continuation ${CONTINUATION} (log-likelihood over tokens 2..${CONTINUATION}), ${GREEDY} greedy tokens; SnapKV window ` +
  `${SNAPKV.window} (at most half the budget past ${SNAPKV.sinks} sinks), pool ${SNAPKV.poolKernel}; ${((performance.now() - started) / 1000).toFixed(0)} s`;
appendBenchResult(
  join(root, 'bench', 'RESULTS.md'),
  {
    name: 'KV compression quality (SnapKV vs naive)',
    deviceName: 'CPU',
    command: 'npx tsx bench/kv-compression-quality.ts',
    about,
  },
  header,
  results,
);
