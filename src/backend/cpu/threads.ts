import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { linearRows } from './matmul.ts';

/** Slots of the control block shared with the workers. */
export const CTRL = { seq: 0, done: 1, weight: 2, T: 3, n: 4, m: 5, parts: 6, error: 7, length: 8 } as const;
/** Buffer ids of the shared scratch input and output (weights take ids from 1). */
export const X_ID = -1;
export const OUT_ID = -2;

/** Message that tells a worker about a shared buffer. */
export interface BufferMessage {
  id: number;
  buffer: SharedArrayBuffer;
  offset: number;
  length: number;
}

/** Output columns [start, end) of part p when m columns are split in `parts` (multiples of 8, so kernels block). */
export function partRange(m: number, parts: number, p: number): [number, number] {
  const chunk = Math.ceil(m / parts / 8) * 8;
  return [Math.min(m, p * chunk), Math.min(m, (p + 1) * chunk)];
}

/** Threads the CPU backend uses: PAGODA_CPU_THREADS, else the machine's parallelism capped at 8. */
export function defaultThreads(): number {
  const env = Number(process.env.PAGODA_CPU_THREADS);
  return Number.isInteger(env) && env > 0 ? env : Math.min(8, availableParallelism());
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
 * A pool of worker threads that split linear() by output columns. The caller computes part 0 itself and waits
 * on an Atomics counter for the rest: the forward pass stays synchronous, as every backend op is.
 */
export class CpuThreads {
  private static readonly pools = new Map<number, CpuThreads>();
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL.length * 4));
  private readonly ports: MessagePort[] = [];
  private readonly ids = new WeakMap<Float32Array, number>();
  private nextId = 1;
  private x = sharedFloat32(0);
  private out = sharedFloat32(0);

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

  /** Whether a product of this size is worth splitting. */
  worthIt(T: number, n: number, m: number): boolean {
    return this.ports.length > 0 && T * n * m >= MIN_PARALLEL_MACS && m >= 16;
  }

  /** out = x · wᵀ (no bias) over all threads; w must be in shared memory (see sharedFloat32). */
  linear(x: Float32Array, w: Float32Array, out: Float32Array, T: number, n: number, m: number): void {
    const c = this.ctrl;
    c[CTRL.weight] = this.idOf(w);
    this.x = this.scratch(this.x, X_ID, T * n);
    this.out = this.scratch(this.out, OUT_ID, T * m);
    this.x.set(x.subarray(0, T * n));
    c[CTRL.T] = T;
    c[CTRL.n] = n;
    c[CTRL.m] = m;
    c[CTRL.parts] = this.ports.length + 1;
    Atomics.store(c, CTRL.done, 0);
    Atomics.add(c, CTRL.seq, 1);
    Atomics.notify(c, CTRL.seq);
    const [start, end] = partRange(m, this.ports.length + 1, 0);
    linearRows(this.x, w, this.out, T, n, m, start, end);
    this.waitForWorkers();
    out.set(this.out.subarray(0, T * m));
  }

  private waitForWorkers(): void {
    const c = this.ctrl;
    const deadline = Date.now() + STALL_MS;
    for (let done = Atomics.load(c, CTRL.done); done < this.ports.length; done = Atomics.load(c, CTRL.done)) {
      Atomics.wait(c, CTRL.done, done, 1000);
      if (Date.now() > deadline) throw new Error('CPU worker threads stopped responding');
    }
    if (c[CTRL.error]) throw new Error('a CPU worker thread failed (run with PAGODA_CPU_THREADS=1 to compute inline)');
  }

  /** The id workers know `w` by, announcing it to them the first time. */
  private idOf(w: Float32Array): number {
    let id = this.ids.get(w);
    if (id === undefined) {
      if (!(w.buffer instanceof SharedArrayBuffer))
        throw new Error('a threaded linear needs its weight in shared memory');
      id = this.nextId++;
      this.ids.set(w, id);
      this.announce({ id, buffer: w.buffer, offset: w.byteOffset, length: w.length });
    }
    return id;
  }

  /** A scratch buffer of at least `length` floats, grown (and re-announced) as needed. */
  private scratch(current: Float32Array, id: number, length: number): Float32Array {
    if (current.length >= length) return current;
    const grown = sharedFloat32(Math.max(length, current.length * 2));
    this.announce({ id, buffer: grown.buffer as SharedArrayBuffer, offset: 0, length: grown.length });
    return grown;
  }

  private announce(msg: BufferMessage): void {
    for (const port of this.ports) port.postMessage(msg);
  }
}
