import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import type { Model } from '../../src/models/model.ts';
import { PagedSession } from './paged-session.ts';

/** node-llama-cpp's CPU build, loaded before the file's tests and disposed after them; call the getter in a test. */
export function cpuLlamaForTests(): () => Llama {
  let llama: Llama | undefined;
  before(async () => {
    llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  });
  after(async () => {
    await llama?.dispose();
  });
  return () => llama!;
}

export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const log = Math.log(sum) + max;
  return Float64Array.from({ length: x.length }, (_, i) => x[i]! - log);
}

/** llama.cpp's embeddings of `texts` from the GGUF at `path`, each scaled to unit length (as pagoda's are). */
export async function llamaCppUnitEmbeddings(
  llama: Llama,
  path: string,
  texts: readonly string[],
  contextSize = 128,
): Promise<number[][]> {
  const model = await llama.loadModel({ modelPath: path });
  const ctx = await model.createEmbeddingContext({ contextSize, threads: 1 });
  try {
    const rows: number[][] = [];
    for (const text of texts) {
      const v = [...(await ctx.getEmbeddingFor(text)).vector];
      const norm = Math.hypot(...v);
      rows.push(v.map((x) => x / norm));
    }
    return rows;
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

/** llama.cpp's log-probabilities (its full next-token distribution) at every position from `from` on, for one token sequence. */
export async function llamaCppLogits(
  model: LlamaModel,
  seq: number[],
  from: number,
  vocab: number,
): Promise<Float64Array[]> {
  const ctx = await model.createContext({
    contextSize: 512,
    batchSize: 512,
    // Tiny models: one thread, so ggml's spinning workers do not fight the other test processes for the cores.
    threads: 1,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    flashAttention: false,
  });
  try {
    const items = seq.map((t, i) => (i >= from ? ([t, { generateNext: { probabilities: true } }] as const) : t));
    const res = await ctx.getSequence().controlledEvaluate(items as never);
    return seq.slice(from).map((_, k) => {
      const row = new Float64Array(vocab).fill(Number.NEGATIVE_INFINITY);
      for (const [id, p] of res[from + k]!.next.probabilities!) row[id] = Math.log(p);
      return row;
    });
  } finally {
    await ctx.dispose();
  }
}

/**
 * Each golden prompt of the fixture in `dir` with its greedy continuation, teacher-forced: at every step from the
 * prompt's last token on, pagoda's logits (`ours`) and llama.cpp's log-probabilities (`want`); `k` counts the
 * prompt's steps.
 */
export async function* teacherForcedSteps(
  ours: Model,
  theirs: LlamaModel,
  dir: string,
): AsyncGenerator<{ row: Float32Array; want: Float64Array; k: number }> {
  for (const p of JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts) {
    const seq: number[] = [...p.input_ids, ...p.greedy_ids];
    const from = p.input_ids.length - 1;
    const rows = new PagedSession(ours, 4).step([{ seq: 0, tokens: seq, logits: 'all' }]).slice(from);
    const ref = await llamaCppLogits(theirs, seq, from, ours.config.vocabSize);
    for (const [k, row] of rows.entries()) yield { row, want: ref[k]!, k };
  }
}
