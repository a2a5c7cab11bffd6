import type { LlamaModel } from 'node-llama-cpp';

export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const log = Math.log(sum) + max;
  return Float64Array.from({ length: x.length }, (_, i) => x[i]! - log);
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
