import { Worker } from 'node:worker_threads';
import type { StepBatch } from '../primitives/step-batch.ts';
import { UserError } from '../util/errors.ts';
import { buildPoolingBatch, type PoolingInput } from './pooling-batch.ts';
import type { StepPooler } from './pooling-runner.ts';
import type { LoadedPoolingWeights, LoadOutput, PoolingFacts, PoolingWeightsOptions } from './pooling-setup.ts';

/** An error as it crosses threads: a UserError stays one (its one line, field and code), any other keeps its stack. */
export interface PostedError {
  message: string;
  stack?: string;
  user?: { field: string | null; code: string | null };
}

export function postedError(e: unknown): PostedError {
  if (e instanceof UserError) return { message: e.message, user: { field: e.field, code: e.code } };
  return e instanceof Error ? { message: e.message, stack: e.stack } : { message: String(e) };
}

function thrown(p: PostedError): Error {
  if (p.user) return new UserError(p.message, p.user.field, p.user.code);
  const err = new Error(p.message);
  if (p.stack) err.stack = p.stack;
  return err;
}

/** What the runner thread is started with. */
export interface PoolingWorkerData {
  modelDir: string;
  options: PoolingWeightsOptions;
  /** The main thread shows loading progress: post it. */
  progress: boolean;
}

/** Main thread → runner thread. Times are milliseconds since the epoch (`now()`), comparable across threads. */
export type ToRunner = { kind: 'run'; id: number; batch: StepBatch; postedAt: number } | { kind: 'release' };

/** Runner thread → main thread. */
export type FromRunner =
  | { kind: 'log'; line: string }
  | { kind: 'progress'; line: string | null }
  | { kind: 'ready'; facts: PoolingFacts }
  | { kind: 'loadFailed'; error: PostedError }
  | { kind: 'rows'; id: number; rows: Float32Array; launchMs: number }
  | { kind: 'stepFailed'; id: number; error: PostedError }
  | { kind: 'released'; error?: PostedError };

export const now = () => performance.timeOrigin + performance.now();

/**
 * Starts the runner thread on `modelDir` and resolves once its weights are loaded (its start-up lines and progress go
 * to `output` meanwhile); a load that fails rejects with the thread's error, the thread gone. `entry`: the worker's
 * module (tests give one that fails on cue).
 */
export function startPoolingThread(
  modelDir: string,
  options: PoolingWeightsOptions,
  output: LoadOutput,
  entry = new URL('./pooling-worker-entry.mjs', import.meta.url),
): Promise<LoadedPoolingWeights<ThreadPooler>> {
  const data: PoolingWorkerData = { modelDir, options, progress: output.progress !== undefined };
  const worker = new Worker(entry, { workerData: data });
  return new Promise((resolve, reject) => {
    // Taken off one by one: a Worker's removeAllListeners() also stops its messages coming.
    const loading = {
      message: (m: FromRunner) => {
        if (m.kind === 'log') output.log(m.line);
        else if (m.kind === 'progress') output.progress?.(m.line);
        else if (m.kind === 'loadFailed') fail(thrown(m.error));
        else if (m.kind === 'ready') {
          done();
          const runner = new ThreadPooler(worker, m.facts, output.log);
          resolve({ runner, facts: m.facts, release: () => runner.release() });
        }
      },
      error: (err: Error) => fail(new Error(`the pooling runner thread failed while loading: ${err.message}`)),
      exit: (code: number) => fail(new Error(`the pooling runner thread exited (code ${code}) while loading`)),
    };
    const done = () => {
      for (const [event, listener] of Object.entries(loading)) worker.off(event, listener);
    };
    const fail = (err: Error) => {
      done();
      worker.terminate().then(() => reject(err), reject);
    };
    for (const [event, listener] of Object.entries(loading)) worker.on(event, listener);
  });
}

interface InFlight {
  resolve(rows: Float32Array): void;
  reject(err: Error): void;
}

/**
 * The engine's side of the runner thread: `run` plans the step here (its arrays' buffers handed over, not copied)
 * and posts it; the thread launches the steps in the order posted, so up to two are in flight, and posts each one's
 * rows back in a buffer of their own. A thread that dies rejects the steps in flight, and every later one, with one
 * error; the engine answers its requests with it.
 */
export class ThreadPooler implements StepPooler {
  readonly task: PoolingFacts['task'];
  readonly outputSize: number;
  readonly normalized: boolean;
  readonly vocabSize: number;
  readonly computesApart = true;
  launchMs: number | undefined;
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 0;
  private failure: Error | null = null;
  private exited = false;
  private releasing: Promise<void> | null = null;

  constructor(
    private readonly worker: Worker,
    facts: PoolingFacts,
    log: (line: string) => void,
  ) {
    this.task = facts.task;
    this.outputSize = facts.outputSize;
    this.normalized = facts.normalized;
    this.vocabSize = facts.config.vocabSize;
    worker.on('message', (m: FromRunner) => {
      if (m.kind === 'log') log(m.line);
      else if (m.kind === 'rows' || m.kind === 'stepFailed') this.settle(m);
    });
    worker.on('error', (err) => this.fail(`the pooling runner thread failed: ${err.message}`));
    worker.on('messageerror', (err) =>
      this.fail(`the pooling runner thread sent a message that cannot be read: ${err.message}`),
    );
    worker.on('exit', (code) => {
      this.exited = true;
      this.fail(
        this.releasing ? 'the pooling runner thread has shut down' : `the pooling runner thread exited (code ${code})`,
      );
    });
    // Idle, it must not keep the process alive.
    worker.unref();
  }

  run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.releasing) return Promise.reject(new Error('the pooling runner thread is shutting down'));
    const batch = buildPoolingBatch(inputs);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.inFlight.set(id, { resolve, reject });
      this.worker.ref();
      const message: ToRunner = { kind: 'run', id, batch, postedAt: now() };
      this.worker.postMessage(message, buffersOf(batch));
    });
  }

  /** Frees the weights inside the thread, then ends it; at once when it has already died. */
  release(): Promise<void> {
    this.releasing ??= new Promise<void>((resolve, reject) => {
      if (this.exited) return resolve();
      let answered = false;
      this.worker.ref();
      this.worker.on('message', (m: FromRunner) => {
        if (m.kind !== 'released') return;
        answered = true;
        const done = () => (m.error ? reject(thrown(m.error)) : resolve());
        this.worker.terminate().then(done, done);
      });
      // Died before answering: nothing is left to free.
      this.worker.on('exit', () => answered || resolve());
      this.worker.postMessage({ kind: 'release' } satisfies ToRunner);
    });
    return this.releasing;
  }

  private settle(m: Extract<FromRunner, { kind: 'rows' | 'stepFailed' }>): void {
    const step = this.inFlight.get(m.id);
    this.inFlight.delete(m.id);
    if (this.inFlight.size === 0 && !this.releasing) this.worker.unref();
    if (m.kind === 'stepFailed') {
      step?.reject(thrown(m.error));
      return;
    }
    this.launchMs = m.launchMs;
    step?.resolve(m.rows);
  }

  private fail(why: string): void {
    this.failure ??= new Error(why);
    for (const step of this.inFlight.values()) step.reject(this.failure);
    this.inFlight.clear();
  }
}

/** The distinct buffers of a step's arrays, handed to the thread with it. */
function buffersOf(batch: StepBatch): ArrayBuffer[] {
  const arrays = Object.values(batch).filter((v): v is Int32Array => v instanceof Int32Array);
  return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
}
