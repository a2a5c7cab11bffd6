import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { readCachedKernel } from './kernel-cache.ts';

/** One module to build: the cache file it is kept in, and what the compiler gets. */
export interface CompileJob {
  /** The module's key in KernelModules (file and defines). */
  key: string;
  name: string;
  source: string;
  /** Compiler options, `--gpu-architecture` included. */
  options: string[];
  cachePath: string;
  /** The kernel and build as a failure names them: `gemv.cu (sm_90 -DPAGODA_DTYPE=2 -DTMAX=1)`. */
  label: string;
}

/** The compiler the workers run: NVRTC from the toolkit roots, or a module exporting `createCompiler()` (tests). */
export type CompilerSource = { nvrtcRoots: readonly string[] } | { module: string };

/** What a worker posts back for a job. */
export interface CompileResult {
  key: string;
  cubin?: Uint8Array;
  /** The first line of the compiler's complaint. */
  error?: string;
  /** performance.timeOrigin-based start and end of the compile, in ms. */
  start: number;
  end: number;
}

export interface CompilePoolStats {
  submitted: number;
  cached: number;
  compiled: number;
  failed: number;
  /** Milliseconds of compiling summed over the workers. */
  compileMs: number;
  /** From the first job queued to the last result, and the part of it the main thread spent waiting in `take`. */
  wallMs: number;
  waitMs: number;
  workers: number;
}

/** How long `take` waits for one module before the main thread compiles it itself. */
const TAKE_TIMEOUT_MS = 300_000;
/** How long `take` waits for the first worker to come up (a worker that cannot start never answers). */
const START_TIMEOUT_MS = 20_000;

/** Worker threads a pool gets: every core but the main thread's, at most 8 (NVRTC's compiles are single-threaded). */
export function compileWorkerCount(jobs: number, cores = availableParallelism()): number {
  return Math.max(1, Math.min(8, cores - 1, jobs));
}

/**
 * Compiles kernel modules in worker threads while the main thread does other work (loading weights). Cached modules
 * are read at once and never reach a worker. `take` is synchronous, since the backend asks for a kernel in the middle
 * of a step: it drains the workers' ports with receiveMessageOnPort and sleeps on a shared counter the workers bump
 * after each result.
 */
export class CompilePool {
  private readonly results = new Map<string, CompileResult>();
  private readonly queued = new Set<string>();
  private readonly workers: { worker: Worker; port: MessagePort; pending: number }[] = [];
  /** [0] results posted, [1] workers started: bumped by the workers, slept on by `take`. */
  private readonly signal = new Int32Array(new SharedArrayBuffer(8));
  private firstQueued = 0;
  private lastDone = 0;
  readonly stats: CompilePoolStats = {
    submitted: 0,
    cached: 0,
    compiled: 0,
    failed: 0,
    compileMs: 0,
    wallMs: 0,
    waitMs: 0,
    workers: 0,
  };

  constructor(
    private readonly compiler: CompilerSource,
    private readonly size: number,
    private readonly timeouts = { startMs: START_TIMEOUT_MS, takeMs: TAKE_TIMEOUT_MS },
  ) {}

  /** Queues a module unless it is cached (then its cubin is ready now) or already known. */
  submit(job: CompileJob): void {
    if (this.results.has(job.key) || this.queued.has(job.key)) return;
    this.stats.submitted++;
    const cached = readCachedKernel(job.cachePath);
    if (cached) {
      this.stats.cached++;
      this.results.set(job.key, { key: job.key, cubin: cached, start: 0, end: 0 });
      return;
    }
    if (this.workers.length < this.size) this.spawn();
    const w = this.workers.reduce((a, b) => (b.pending < a.pending ? b : a));
    w.pending++;
    if (!this.queued.size && !this.firstQueued) this.firstQueued = performance.now();
    this.queued.add(job.key);
    w.worker.postMessage(job);
  }

  /** Whether `key` was submitted (its cubin is, or will be, here). */
  has(key: string): boolean {
    return this.results.has(key) || this.queued.has(key);
  }

  /**
   * The module's cubin, waiting for its worker if it is still compiling; a failed compile throws its one line. Null
   * when no worker came up, or none answered in time: the caller compiles the module itself (the pool is closed).
   */
  take(key: string): Uint8Array | null {
    const t0 = performance.now();
    for (;;) {
      const seen = Atomics.load(this.signal, 0);
      this.poll();
      const r = this.results.get(key);
      if (r) {
        this.stats.waitMs += performance.now() - t0;
        if (r.error) throw new Error(r.error);
        return r.cubin!;
      }
      if (!this.queued.has(key)) throw new Error(`kernel module ${key} was never submitted to the compile pool`);
      const waited = performance.now() - t0;
      const started = Atomics.load(this.signal, 1) > 0;
      if ((!started && waited > this.timeouts.startMs) || waited > this.timeouts.takeMs) {
        this.stats.waitMs += waited;
        this.close();
        return null;
      }
      Atomics.wait(this.signal, 0, seen, 200);
    }
  }

  /** Collects the results posted so far, without waiting. */
  poll(): void {
    for (const w of this.workers) {
      for (let m = receiveMessageOnPort(w.port); m; m = receiveMessageOnPort(w.port)) {
        const r = m.message as CompileResult;
        w.pending--;
        this.queued.delete(r.key);
        this.results.set(r.key, r);
        this.stats.compileMs += r.end - r.start;
        if (r.error) this.stats.failed++;
        else this.stats.compiled++;
        this.lastDone = performance.now();
        this.stats.wallMs = this.lastDone - this.firstQueued;
      }
    }
    // Idle workers hold an NVRTC each: let them go once every job is answered (a later submit starts new ones).
    if (!this.queued.size && this.workers.length) this.close();
  }

  /** Milliseconds of the pool's compiling (first job queued to last result, or now) inside [start, end]. */
  busyWithin(start: number, end: number): number {
    if (!this.firstQueued) return 0;
    const last = this.queued.size ? performance.now() : this.lastDone;
    return Math.max(0, Math.min(end, last) - Math.max(start, this.firstQueued));
  }

  /** Stops the workers (jobs still compiling are dropped; their modules compile on the main thread when used). */
  close(): void {
    for (const w of this.workers) void w.worker.terminate();
    this.workers.length = 0;
    this.queued.clear();
  }

  private spawn(): void {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./worker/compile-worker-entry.mjs', import.meta.url), {
      workerData: { compiler: this.compiler, signal: this.signal, port: port2 },
      transferList: [port2],
    });
    worker.unref();
    this.workers.push({ worker, port: port1, pending: 0 });
    this.stats.workers = this.workers.length;
  }
}
