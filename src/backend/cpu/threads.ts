import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { DType } from '../../primitives/host-tensor.ts';
import type { FileExtent } from '../../primitives/lazy-tensor.ts';
import { LORA_CHUNK_ROWS, LORA_DTYPES, type LoraMergePool, mergeLoraRows } from '../../primitives/lora-merge.ts';
import type { AttentionSpec } from '../backend.ts';
import { type AttentionBatch, type PagedKv, pagedAttention } from './attention.ts';
import {
  ATTENTION_PARAMS,
  type AttentionParams,
  type BufferMessage,
  CTRL,
  claimRows,
  FLOAT_OFFSET,
  JOB,
  KV_TYPES,
  META_ID,
  OUT_ID,
  partRange,
  QUANT_TYPES,
  RUNS_ID,
  X_ID,
} from './job-layout.ts';
import { linearRows } from './matmul.ts';
import { linearQuantRows, type PartRows } from './quant-matmul.ts';
import type { RowSource } from './row-source.ts';
import { FILL_CHUNK, FILL_DTYPES, fillValues, runsOf } from './weight-fill.ts';

/** An array or memory that worker threads read by id. */
export type SharedOperand = Float32Array | Float64Array | Uint8Array | WebAssembly.Memory;

/** Threads the CPU backend uses unless told (PAGODA_CPU_THREADS, read by the CLI): the machine's parallelism up to 8. */
export function defaultThreads(): number {
  return Math.min(8, availableParallelism());
}

/**
 * LoRA merges over `threads` threads (the pool started on the first merge worth splitting), or undefined for one
 * thread: what the loader's `withLora` takes.
 */
export function threadedLoraMerge(threads = defaultThreads()): LoraMergePool | undefined {
  if (threads <= 1) return undefined;
  return {
    mergeRows(w, dtype, at, fb, scale, rows, cols, rank) {
      if (rows * cols * rank < MIN_PARALLEL_MACS) return mergeLoraRows(w, dtype, at, fb, scale, cols, rank, 0, rows);
      const pool = CpuThreads.get(threads);
      try {
        pool.loraMerge(w, dtype, at, fb, scale, rows, cols, rank);
      } finally {
        pool.forget([w, at, fb]);
      }
    },
  };
}

/** A float32 array in shared memory, so workers can read it without a copy. */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * 4));
}

/** Work below this many multiply-adds stays on the calling thread: waking workers costs tens of microseconds. */
export const MIN_PARALLEL_MACS = 1 << 18;
/** A step that makes no progress for this long means a worker died. */
const STALL_MS = 60_000;

/**
 * A pool of worker threads that split linear() by output columns and attention by query heads. The caller runs
 * part 0 itself and waits on an Atomics counter for the rest: the forward pass stays synchronous, as every backend
 * op is, and each output element is computed by the same code as on one thread, so results are identical.
 */
export class CpuThreads {
  private static readonly pools = new Map<number, CpuThreads>();
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(FLOAT_OFFSET + 32));
  private readonly ports: MessagePort[] = [];
  private readonly ids = new WeakMap<SharedOperand, number>();
  private nextId = 1;
  private x = sharedFloat32(0);
  private out = sharedFloat32(0);
  private meta = new Int32Array(new SharedArrayBuffer(0));
  private runs = new Float64Array(new SharedArrayBuffer(0));

  /** The process-wide pool for `threads` threads, if one was started. */
  static running(threads: number): CpuThreads | undefined {
    return CpuThreads.pools.get(threads);
  }

  /** The process-wide pool for `threads` threads (the caller included), started on first use. */
  static get(threads: number): CpuThreads {
    let pool = CpuThreads.pools.get(threads);
    if (!pool) CpuThreads.pools.set(threads, (pool = new CpuThreads(threads - 1)));
    return pool;
  }

  private constructor(workers: number) {
    // Workers load the TypeScript worker through tsx's API (hooks from --import do not reach workers on Node 20).
    const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
    const entry = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
    const bootstrap = `import(${api}).then((tsx) => { tsx.register(); return import(${entry}); });`;
    for (let i = 0; i < workers; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(bootstrap, {
        eval: true,
        workerData: { ctrl: this.ctrl.buffer, port: port2, part: i + 1 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.ports.push(port1);
    }
  }

  /** Whether every worker has started (booting takes a few hundred milliseconds: tsx compiles the worker's code). */
  started(): boolean {
    return Atomics.load(this.ctrl, CTRL.ready) === this.ports.length;
  }

  /**
   * Fills values [from, end) of a weight in shared memory from its file runs (stored as `dtype`), every thread
   * claiming FILL_CHUNK values at a time: their reads, the first touch of the fresh pages and the widening of 16-bit
   * values run side by side.
   */
  fill(out: Float32Array, dtype: DType, extents: readonly FileExtent[], from = 0): void {
    if (this.runs.length < extents.length * 3) {
      this.runs = new Float64Array(new SharedArrayBuffer(extents.length * 3 * 8));
      const buffer = this.runs.buffer as SharedArrayBuffer;
      this.announce({ id: RUNS_ID, type: 'f64', buffer, offset: 0, length: this.runs.length });
    }
    runsOf(extents, this.runs);
    this.post(JOB.fill, [this.idOf(out), FILL_DTYPES.indexOf(dtype), extents.length, from]);
    const fill = (s: number, e: number) => fillValues(this.runs, extents.length, dtype, out, from + s, from + e);
    this.share(() => claimRows(this.ctrl, out.length - from, this.parts, fill, FILL_CHUNK));
  }

  /**
   * A LoRA merge, W += scale · B A in place on W's bytes (mergeLoraRows), chunks of rows claimed by all threads; the
   * operands in shared memory.
   */
  loraMerge(...[w, dtype, at, fb, scale, rows, cols, rank]: Parameters<LoraMergePool['mergeRows']>): void {
    new Float64Array(this.ctrl.buffer, FLOAT_OFFSET, 1)[0] = scale;
    this.post(JOB.loraMerge, [
      this.idOf(w),
      LORA_DTYPES.indexOf(dtype),
      this.idOf(at),
      this.idOf(fb),
      rows,
      cols,
      rank,
    ]);
    const merge = (s: number, e: number) => mergeLoraRows(w, dtype, at, fb, scale, cols, rank, s, e);
    this.share(() => claimRows(this.ctrl, rows, this.parts, merge, LORA_CHUNK_ROWS));
  }

  /** Whether this many multiply-adds are worth splitting. */
  worthIt(macs: number): boolean {
    return this.ports.length > 0 && macs >= MIN_PARALLEL_MACS;
  }

  /**
   * out = x · wᵀ (no bias) over all threads, w the `[m, n]` matrix from element `wOffset` of a weight in shared
   * memory (see sharedFloat32; an offset names one expert of a stacked weight).
   */
  linear(x: Float32Array, w: Float32Array, out: Float32Array, T: number, n: number, m: number, wOffset = 0): void {
    this.stage(x, T * n, T * m);
    this.post(JOB.linear, [this.idOf(w), T, n, m, wOffset]);
    const [start, end] = partRange(m, this.parts, 0);
    this.share(() => linearRows(this.x, w.subarray(wOffset), this.out, T, n, m, start, end));
    out.set(this.out.subarray(0, T * m));
  }

  /**
   * out = x · wᵀ for a quantized weight, one job per share of a part (its rows claimed in chunks by all threads), share
   * i reading inputs[i] (x quantized for its type: quant-matmul.ts's quantInput). The blocks must be in shared memory.
   */
  linearQuant(
    inputs: readonly Float32Array[],
    shares: readonly PartRows[],
    out: Float32Array,
    T: number,
    n: number,
    m: number,
  ): void {
    let staged: Float32Array | null = null;
    for (const [i, { part: p, first, r0, r1 }] of shares.entries()) {
      const input = inputs[i]!;
      if (input !== staged) this.stage((staged = input), input.length, T * m);
      const memory = p.home ? this.idOf(p.home.memory) : -1;
      const params = [this.idOf(p.bytes), QUANT_TYPES.indexOf(p.type), T, n, m, first, p.rows, p.rowBytes];
      this.post(JOB.linearQuant, [...params, memory, p.home?.offset ?? 0, r0, r1]);
      const claimed: RowSource = (run) => claimRows(this.ctrl, r1 - r0, this.parts, (a, b) => run(r0 + a, r0 + b));
      this.share(() => linearQuantRows(this.x, p, this.out, T, n, m, first, claimed));
    }
    out.set(this.out.subarray(0, T * m));
  }

  /**
   * pagedAttention over all threads, query heads split between them (and each row's LSE into `lse`, when given); the
   * cache must be in shared memory.
   */
  attention(
    q: Float32Array,
    cache: PagedKv,
    spec: AttentionSpec,
    batch: AttentionBatch,
    out: Float32Array,
    lse?: Float32Array,
  ): void {
    const S = batch.numSeqs;
    const maxBlocks = batch.maxBlocksPerSeq;
    this.stage(q, q.length, out.length + (lse?.length ?? 0));
    const metaLength = 2 * S + 1 + S * maxBlocks;
    if (this.meta.length < metaLength) {
      this.meta = new Int32Array(new SharedArrayBuffer(metaLength * 8));
      this.announce({
        id: META_ID,
        type: 'i32',
        buffer: this.meta.buffer as SharedArrayBuffer,
        offset: 0,
        length: metaLength * 2,
      });
    }
    this.meta.set(batch.cuSeqlensQ.subarray(0, S + 1), 0);
    this.meta.set(batch.contextLens.subarray(0, S), S + 1);
    this.meta.set(batch.blockTables.subarray(0, S * maxBlocks), 2 * S + 1);
    const floats = [spec.scale, spec.softcap ?? 0, cache.k.scale, cache.v.scale];
    new Float64Array(this.ctrl.buffer, FLOAT_OFFSET, 4).set(floats);
    const a: AttentionParams = {
      k: this.idOf(cache.k.data),
      v: this.idOf(cache.v.data),
      kvType: KV_TYPES.indexOf(cache.k.type),
      numKvHeads: cache.numKvHeads,
      headDim: cache.headDim,
      Hq: spec.numHeads,
      Hk: spec.numKvHeads,
      D: spec.headDim,
      window: spec.slidingWindow,
      numSeqs: S,
      maxBlocks,
      blockSize: batch.blockSize,
      T: q.length / (spec.numHeads * spec.headDim),
      withLse: lse ? 1 : 0,
    };
    this.post(
      JOB.attention,
      ATTENTION_PARAMS.map((k) => a[k]),
    );
    const [h0, h1] = partRange(spec.numHeads, this.parts, 0, 1);
    this.share(() =>
      pagedAttention(this.x, cache, spec, batch, this.out, h0, h1, lse && this.out.subarray(out.length)),
    );
    out.set(this.out.subarray(0, out.length));
    lse?.set(this.out.subarray(out.length, out.length + lse.length));
  }

  /**
   * Makes the workers drop their views of `operands` (a released backend's weights and caches), now: each reads its
   * messages before the no-op job this posts.
   */
  forget(operands: Iterable<SharedOperand>): void {
    const ids: number[] = [];
    for (const a of operands) {
      const id = this.ids.get(a);
      if (id === undefined) continue;
      ids.push(id);
      this.ids.delete(a);
    }
    if (ids.length === 0) return;
    this.announce({ type: 'forget', ids });
    this.post(JOB.none, []);
    this.wait();
  }

  /** How many shared buffers each worker holds a view of (for tests: a released model's must be gone). */
  census(): number[] {
    this.post(JOB.census, []);
    this.wait();
    // One slot per worker after the parameters: the first CTRL.length - CTRL.params workers report.
    return Array.from(this.ctrl.subarray(CTRL.params, Math.min(CTRL.length, CTRL.params + this.ports.length)));
  }

  private get parts(): number {
    return this.ports.length + 1;
  }

  /** Copies the input into shared scratch and makes sure the output scratch is big enough. */
  private stage(input: Float32Array, inLength: number, outLength: number): void {
    this.x = this.scratch(this.x, X_ID, inLength);
    this.out = this.scratch(this.out, OUT_ID, outLength);
    this.x.set(input.subarray(0, inLength));
  }

  private post(kind: number, params: readonly number[]): void {
    const c = this.ctrl;
    c[CTRL.kind] = kind;
    c[CTRL.parts] = this.parts;
    // Each job reports its own failure: one failed job does not fail every later one.
    c[CTRL.error] = 0;
    params.forEach((v, i) => {
      c[CTRL.params + i] = v;
    });
    Atomics.store(c, CTRL.done, 0);
    Atomics.store(c, CTRL.next, 0);
    Atomics.add(c, CTRL.seq, 1);
    Atomics.notify(c, CTRL.seq);
  }

  /**
   * Runs this thread's share of the job posted last, then waits for the workers' shares, even when its own failed:
   * the next job must not be posted while workers still run this one.
   */
  private share(mine: () => void): void {
    let failure: unknown;
    try {
      mine();
    } catch (err) {
      failure = err;
    }
    this.wait();
    if (failure !== undefined) throw failure;
  }

  /** Waits for every worker's share of the job posted last. */
  private wait(): void {
    const c = this.ctrl;
    const deadline = Date.now() + STALL_MS;
    for (let done = Atomics.load(c, CTRL.done); done < this.ports.length; done = Atomics.load(c, CTRL.done)) {
      Atomics.wait(c, CTRL.done, done, 1000);
      if (Date.now() > deadline) throw new Error('CPU worker threads stopped responding');
    }
    if (c[CTRL.error]) throw new Error('a CPU worker thread failed (run with PAGODA_CPU_THREADS=1 to compute inline)');
  }

  /** The id workers know a shared array (or memory) by, announcing it to them the first time. */
  private idOf(a: SharedOperand): number {
    let id = this.ids.get(a);
    if (id === undefined) {
      if (!(a.buffer instanceof SharedArrayBuffer))
        throw new Error('a threaded op needs its operands in shared memory');
      id = this.nextId++;
      this.ids.set(a, id);
      if (a instanceof WebAssembly.Memory) this.announce({ id, type: 'memory', memory: a });
      else {
        const type = a instanceof Uint8Array ? 'u8' : a instanceof Float64Array ? 'f64' : 'f32';
        this.announce({ id, type, buffer: a.buffer, offset: a.byteOffset, length: a.length });
      }
    }
    return id;
  }

  /** A scratch buffer of at least `length` floats, grown (and re-announced) as needed. */
  private scratch(current: Float32Array, id: number, length: number): Float32Array {
    if (current.length >= length) return current;
    const grown = sharedFloat32(Math.max(length, current.length * 2));
    this.announce({ id, type: 'f32', buffer: grown.buffer as SharedArrayBuffer, offset: 0, length: grown.length });
    return grown;
  }

  private announce(msg: BufferMessage): void {
    for (const port of this.ports) port.postMessage(msg);
  }
}
