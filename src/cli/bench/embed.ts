import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { PoolingEngine } from '../../engine/pooling-engine.ts';
import { mulberry32 } from '../../util/random.ts';

/**
 * An embedding workload: `numInputs` sequences of random token ids with lengths uniform in `inputLen`, from
 * mulberry32(seed) (bench/st_embed_baseline.py draws the same ids). Token ids, because the benchmark shapes have no
 * tokenizer, and the sentence-transformers baseline is fed the same ids.
 */
export interface EmbedWorkload {
  numInputs: number;
  inputLen: [number, number];
  seed: number;
}

/** The GPU workload: 10,000 inputs of 16-512 tokens. */
export const GPU_EMBED_WORKLOAD: EmbedWorkload = { numInputs: 10_000, inputLen: [16, 512], seed: 0 };
/** Scaled down for the CPU backend. */
export const CPU_EMBED_WORKLOAD: EmbedWorkload = { numInputs: 64, inputLen: [16, 128], seed: 0 };

/** The workload's inputs: for each, its length then its ids, all from one mulberry32 stream. */
export function embedInputs(vocabSize: number, w: EmbedWorkload): number[][] {
  const r = mulberry32(w.seed);
  const [lo, hi] = w.inputLen;
  return Array.from({ length: w.numInputs }, () => {
    const n = lo + Math.floor(r() * (hi - lo + 1));
    return Array.from({ length: n }, () => Math.floor(r() * vocabSize));
  });
}

export interface EmbedResult {
  inputs: number;
  tokens: number;
  seconds: number;
  embeddingsPerSecond: number;
  tokensPerSecond: number;
  /** Engine steps the run took (0 when measured from the clients' side only). */
  steps: number;
}

function result(inputs: number[][], seconds: number, steps: number): EmbedResult {
  const tokens = inputs.reduce((n, x) => n + x.length, 0);
  return {
    inputs: inputs.length,
    tokens,
    seconds,
    embeddingsPerSecond: inputs.length / seconds,
    tokensPerSecond: tokens / seconds,
    steps,
  };
}

/** Offline: every input submitted to the engine at once (one sequence each), timed until the last embedding. */
export async function runEmbedOffline(engine: PoolingEngine, inputs: number[][]): Promise<EmbedResult> {
  const before = engine.stats().steps;
  const t0 = performance.now();
  await Promise.all(inputs.map((tokenIds) => engine.pool([{ tokenIds }])));
  return result(inputs, (performance.now() - t0) / 1000, engine.stats().steps - before);
}

/** Client threads for `concurrency` clients: up to 16 clients each, at most 4, leaving two cores to the server. */
export function clientThreads(concurrency: number, cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, Math.ceil(concurrency / 16), cores - 2));
}

/**
 * The same inputs through `POST {url}/v1/embeddings` from `concurrency` clients, each sending one input (token ids,
 * base64 answers as the openai client asks for) and the next when it is answered. The clients run in worker threads
 * (`clientThreads`), so their own work shares neither the server's event loop nor, where there are cores, its core;
 * timed from when every thread is set up until the last answer.
 */
export async function runEmbedClients(
  url: string,
  model: string,
  inputs: number[][],
  concurrency: number,
  threads = clientThreads(concurrency),
): Promise<EmbedResult> {
  const next = new Int32Array(new SharedArrayBuffer(4));
  const workers = Array.from({ length: threads }, (_, t) => {
    // The clients split as evenly as they go: the first threads take one more when they do not divide.
    const share = Math.floor(concurrency / threads) + (t < concurrency % threads ? 1 : 0);
    return new Worker(new URL('./embed-clients.mjs', import.meta.url), {
      workerData: { url, model, inputs, concurrency: share, next },
    });
  });
  const message = (w: Worker) =>
    new Promise<unknown>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  try {
    await Promise.all(workers.map(message));
    const t0 = performance.now();
    const replies = workers.map(message);
    for (const w of workers) w.postMessage('go');
    for (const m of (await Promise.all(replies)) as { error?: string }[]) {
      if (m.error !== undefined) throw new Error(`embedding clients: ${m.error}`);
    }
    return result(inputs, (performance.now() - t0) / 1000, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
