/**
 * What the CPU worker pool (threads.ts) and its workers (worker.ts, worker-jobs.ts) share: the control block's slots,
 * job kinds and parameters, the ids of the scratch buffers, and how a job's items are split between threads.
 */
import { GGML_TYPES, isQuantType } from '../../primitives/ggml-types.ts';
import type { KvPlane } from './kv-store.ts';

/**
 * Integer slots of the control block shared with the workers (`ready`: how many have started; `flagLock`: held by a
 * starting worker while it sets a V8 flag); job parameters follow `params`.
 */
export const CTRL = {
  seq: 0,
  done: 1,
  error: 2,
  kind: 3,
  parts: 4,
  next: 5,
  ready: 6,
  flagLock: 7,
  params: 8,
  length: 26,
} as const;
/** Float slots (f64, after the integer ones): the attention scale and soft-cap, then the K and V planes' scales. */
export const FLOAT_OFFSET = CTRL.length * 4;
/** Job kinds; `census` has each worker report how many shared buffers it holds, `none` only reads the messages. */
export const JOB = { none: 0, linear: 1, attention: 2, linearQuant: 3, census: 4, fill: 5, loraMerge: 6 } as const;
/**
 * Buffer ids of the shared scratch input, output, step metadata and a fill job's file runs (weights and caches take
 * ids from 1).
 */
export const X_ID = -1;
export const OUT_ID = -2;
export const META_ID = -3;
export const RUNS_ID = -4;

/**
 * Message that tells a worker about a shared buffer, or a shared WebAssembly memory holding weights' blocks, or that
 * buffers it was told about are gone (their model unloaded): it drops its views, so the memory can be freed.
 */
export type BufferMessage =
  | { id: number; type: 'f32' | 'f64' | 'i32' | 'u8'; buffer: SharedArrayBuffer; offset: number; length: number }
  | { id: number; type: 'memory'; memory: WebAssembly.Memory }
  | { type: 'forget'; ids: number[] };

/** Items [start, end) of part p when `total` items are split in `parts`, in multiples of `align`. */
export function partRange(total: number, parts: number, p: number, align = 8): [number, number] {
  const chunk = Math.ceil(total / parts / align) * align;
  return [Math.min(total, p * chunk), Math.min(total, (p + 1) * chunk)];
}

/** Chunks of a quantized linear's rows per thread, unless told: enough that the threads finish together. */
const CLAIMS_PER_THREAD = 8;

/**
 * Runs `run` over chunks of rows [0, total) that this thread claims one at a time from the job's shared counter
 * (CTRL.next, zeroed when the job is posted) until none is left. A thread that falls behind (descheduled, or its
 * rows slower) takes fewer chunks instead of holding the others up; each row is computed by the same code
 * whichever thread takes it, so results do not depend on the split. `chunk`, when given, is the rows a claim takes.
 */
export function claimRows(
  ctrl: Int32Array,
  total: number,
  threads: number,
  run: (start: number, end: number) => void,
  chunk = Math.max(16, Math.ceil(total / (threads * CLAIMS_PER_THREAD) / 16) * 16),
) {
  for (let c = Atomics.add(ctrl, CTRL.next, 1); c * chunk < total; c = Atomics.add(ctrl, CTRL.next, 1)) {
    run(c * chunk, Math.min(total, (c + 1) * chunk));
  }
}

/** The attention job's integer parameters, in slot order after CTRL.params. */
export const ATTENTION_PARAMS = [
  'k',
  'v',
  'kvType',
  'numKvHeads',
  'headDim',
  'Hq',
  'Hk',
  'D',
  'window',
  'numSeqs',
  'maxBlocks',
  'blockSize',
  'T',
  'withLse',
] as const;
export type AttentionParams = Record<(typeof ATTENTION_PARAMS)[number], number>;

/** A shared buffer as a worker sees it. */
export type SharedArray = Float32Array | Float64Array | Int32Array | Uint8Array | WebAssembly.Memory;

/** KV plane types by the index a job names them with. */
export const KV_TYPES: readonly KvPlane['type'][] = ['f32', 'fp8', 'q8_0', 'q4_0'];

/** Quant types by the index a job names them with. */
export const QUANT_TYPES = GGML_TYPES.flatMap((t) => (t.stored && isQuantType(t.stored) ? [t.stored] : []));
