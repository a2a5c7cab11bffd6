import { setImmediate as nextTurn } from 'node:timers/promises';
import { inlineEncoder, type PromptEncoder } from '../loader/background-tokenizer.ts';
import type { TextTokenizer } from '../loader/tokenizer.ts';
import type { PoolingInput } from '../runner/pooling-batch.ts';
import type { StepPooler } from '../runner/pooling-runner.ts';
import { UserError } from '../util/errors.ts';
import { countStep } from './engine-counters.ts';
import { StepPacer } from './step-pacer.ts';
import type { EncodeOptions, EngineApi, EngineStats, RequestOutput } from './types.ts';

export interface PoolingEngineConfig {
  runner: StepPooler;
  tokenizer: TextTokenizer;
  /** Encodes request text off the event loop (long texts in a worker); `close()` at shutdown. Default: inline. */
  promptEncoder?: PromptEncoder;
  /** Longest sequence accepted (tokens). */
  maxModelLen: number;
  /** Token budget of one step; at least maxModelLen, so any accepted sequence fits a step. */
  maxNumBatchedTokens: number;
  /** Sequences per step. */
  maxNumSeqs: number;
  /** Steps run only when `step()` is called (tests drive the engine step by step). */
  manual?: boolean;
  /**
   * Frees the model's memory once the engine has stopped (the loader's backend, or its runner thread, awaited);
   * absent: the caller's to free.
   */
  release?: () => void | Promise<void>;
}

/** When an input's step was launched and when its row came back (performance.now() milliseconds). */
export interface PoolingTimes {
  scheduled: number;
  done: number;
}

interface Pending {
  input: PoolingInput;
  times?: PoolingTimes;
  resolve(row: Float32Array): void;
  reject(err: Error): void;
}

type StepOutcome = { out: Float32Array } | { err: Error };

/** A step started on the device: its requests, and its rows or error once done (never rejects). */
interface Launched {
  batch: Pending[];
  outcome: Promise<StepOutcome>;
}

/**
 * The engine of an embedding or reranking model: every input is a prefill-only sequence, computed whole in one step
 * (an encoder's attention is bidirectional, so it is never split into chunks) with no KV cache. Queued sequences from
 * all requests are batched first come, first served under the token budget and the sequence cap. The event loop runs
 * while the device computes (up to two steps in flight on CUDA), and on the CPU between steps. A reranker's one logit becomes a relevance score through a sigmoid
 * (sentence-transformers' CrossEncoder default for one label).
 */
export class PoolingEngine implements EngineApi {
  private readonly waiting: Pending[] = [];
  private loop: Promise<void> | null = null;
  /** Wakes the running loop when a request arrives while it has room for another step in flight. */
  private wake: (() => void) | null = null;
  private closed = false;
  private counters = { promptTokens: 0, steps: 0, stepTokens: new Map<number, number>() };
  private readonly encoder: PromptEncoder;
  private readonly pacer = new StepPacer();

  constructor(readonly config: PoolingEngineConfig) {
    this.encoder = config.promptEncoder ?? inlineEncoder(config.tokenizer);
    if (config.maxNumBatchedTokens < config.maxModelLen) {
      throw new UserError(
        `max num batched tokens ${config.maxNumBatchedTokens} is below the longest input (${config.maxModelLen}): an input is never split`,
      );
    }
  }

  get task() {
    return this.config.runner.task;
  }

  get outputSize(): number {
    return this.config.runner.outputSize;
  }

  /** Embeddings come L2-normalized (the model ends in Normalize). */
  get normalized(): boolean {
    return this.config.runner.normalized;
  }

  /**
   * Tokenizes request text off the event loop (long texts in a worker). Texts longer than the model takes are not
   * refused here: the embedding routes truncate or refuse them by their API's rule.
   */
  encode(text: string, opts?: EncodeOptions): Promise<number[]> {
    return this.encoder.encode(text, opts);
  }

  /**
   * Queues one sequence per input; resolves with their rows in order once all have run. Refuses (UserError) inputs
   * that are empty, too long or hold ids outside the vocabulary, naming the input's index. When `signal` fires,
   * inputs not yet run are dropped and the promise rejects. `times`, when given, gets each input's (for metrics).
   */
  pool(inputs: readonly PoolingInput[], signal?: AbortSignal, times?: PoolingTimes[]): Promise<Float32Array[]> {
    if (this.closed) return Promise.reject(new UserError('the engine is shutting down'));
    let tokens = 0;
    for (let i = 0; i < inputs.length; i++) tokens += this.checked(inputs[i]!, i);
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    const mine: Pending[] = [];
    const rows = Promise.all(
      inputs.map(
        (input, i) =>
          new Promise<Float32Array>((resolve, reject) => {
            const p: Pending = { input, resolve, reject };
            if (times) p.times = times[i] = { scheduled: Number.NaN, done: Number.NaN };
            mine.push(p);
            this.waiting.push(p);
          }),
      ),
    );
    this.counters.promptTokens += tokens;
    const onAbort = () => {
      for (const p of mine) {
        const i = this.waiting.indexOf(p);
        if (i >= 0) this.waiting.splice(i, 1);
        p.reject(signal!.reason ?? new Error('aborted'));
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.kick();
    return rows.finally(() => signal?.removeEventListener('abort', onAbort));
  }

  /** The input's length once it is known to fit and hold only ids of the vocabulary (a loop: every request passes here). */
  private checked(input: PoolingInput, i: number): number {
    const ids = input.tokenIds;
    const n = ids.length;
    if (n === 0) throw new UserError(`input ${i} is empty (expected at least one token)`);
    if (n > this.config.maxModelLen) {
      throw new UserError(`input ${i} is ${n} tokens, more than this model's maximum of ${this.config.maxModelLen}`);
    }
    const vocab = this.config.runner.vocabSize;
    for (let j = 0; j < n; j++) {
      const t = ids[j]!;
      if (!Number.isInteger(t) || t < 0 || t >= vocab) {
        throw new UserError(`input ${i}: token id ${t} is outside the vocabulary (0..${vocab - 1})`);
      }
    }
    return n;
  }

  /**
   * One step: the longest first-come prefix of the queue within the budget. The event loop runs while the device
   * computes (HTTP requests are parsed and queued for the next step, answers written). Returns false when idle.
   */
  async step(): Promise<boolean> {
    const launched = this.launch();
    if (!launched) return false;
    this.deliver(launched.batch, await launched.outcome);
    return true;
  }

  /** Starts the longest first-come prefix of the queue within the budget; null when the queue is empty. */
  private launch(): Launched | null {
    if (this.waiting.length === 0) return null;
    const { maxNumBatchedTokens, maxNumSeqs } = this.config;
    let tokens = 0;
    let n = 0;
    while (n < this.waiting.length && n < maxNumSeqs) {
      const len = this.waiting[n]!.input.tokenIds.length;
      if (tokens + len > maxNumBatchedTokens) break;
      tokens += len;
      n++;
    }
    const batch = this.waiting.splice(0, n);
    const at = performance.now();
    for (const p of batch) if (p.times) p.times.scheduled = at;
    const runner = this.config.runner;
    let rows: Promise<Float32Array>;
    try {
      rows = runner.run(batch.map((p) => p.input));
    } catch (err) {
      rows = Promise.reject(err);
    }
    // A runner thread's `run` only plans and posts the step: the launch itself is the thread's (`StepPooler.launchMs`).
    this.pacer.launched(tokens, at, performance.now() - at + (runner.launchMs ?? 0));
    const outcome = rows.then(
      (out) => ({ out }),
      (err: unknown) => ({ err: err instanceof Error ? err : new Error(String(err)) }),
    );
    return { batch, outcome };
  }

  /** The queue holds at least a whole step: more requests could not join the next one. */
  private queueFillsStep(): boolean {
    const { maxNumBatchedTokens, maxNumSeqs } = this.config;
    if (this.waiting.length >= maxNumSeqs) return true;
    let tokens = 0;
    for (const p of this.waiting) {
      tokens += p.input.tokenIds.length;
      if (tokens >= maxNumBatchedTokens) return true;
    }
    return false;
  }

  /** Resolves a step's requests with their rows, or rejects them all with its error. */
  private deliver(batch: readonly Pending[], outcome: StepOutcome): void {
    if ('err' in outcome) {
      for (const p of batch) p.reject(outcome.err);
      return;
    }
    this.counters.steps++;
    countStep(
      this.counters.stepTokens,
      batch.reduce((n, p) => n + p.input.tokenIds.length, 0),
    );
    const runner = this.config.runner;
    const w = runner.outputSize;
    const now = performance.now();
    batch.forEach((p, i) => {
      if (p.times) p.times.done = now;
      // A view, not a copy: each step's rows come in a buffer of their own.
      const row = outcome.out.subarray(i * w, (i + 1) * w);
      if (runner.task === 'score') for (let j = 0; j < w; j++) row[j] = 1 / (1 + Math.exp(-row[j]!));
      p.resolve(row);
    });
  }

  generate(): AsyncIterable<RequestOutput> {
    const what = this.task === 'score' ? 'a reranking' : 'an embedding';
    throw new UserError(`this is ${what} model: it does not generate text`);
  }

  /** Pooling requests end through their AbortSignal; there is no generation to abort. */
  abort(): void {}

  stats(): EngineStats {
    return {
      running: 0,
      waiting: this.waiting.length,
      totalBlocks: 0,
      freeBlocks: 0,
      blockSize: 0,
      preemptions: 0,
      promptTokens: this.counters.promptTokens,
      promptTokensComputed: this.counters.promptTokens,
      generationTokens: 0,
      prefixCacheHits: 0,
      prefixCacheQueries: 0,
      steps: this.counters.steps,
      stepTokens: this.counters.stepTokens,
      kvBlocksSaved: 0,
      specDraftTokens: 0,
      specAcceptedTokens: 0,
    };
  }

  async shutdown(force = false): Promise<void> {
    this.closed = true;
    if (force) for (const p of this.waiting.splice(0)) p.reject(new Error('the engine shut down'));
    while (this.loop) await this.loop;
    await this.encoder.close().finally(() => this.config.release?.());
  }

  private kick(): void {
    if (this.config.manual) return;
    if (this.loop) {
      this.wake?.();
      return;
    }
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      if (this.waiting.length > 0) this.kick();
    });
  }

  /**
   * Runs steps while there is work. A device computing apart from this thread (CUDA) keeps two steps in flight: the
   * next one is launched while the last one still computes (the stream runs them in order), so the device does not
   * idle while the host launches. It is launched when the queue holds a whole step, or when the step in flight is
   * about to end (`StepPacer`): until then, arriving requests join it. Answers are delivered in launch order. The CPU
   * computes inside `run`: one step at a time.
   */
  private async runLoop(): Promise<void> {
    const depth = this.config.runner.computesApart ? 2 : 1;
    const inFlight: Launched[] = [];
    const due = () => inFlight.length === 0 || this.queueFillsStep() || this.pacer.delay(performance.now()) === 0;
    const fill = () => {
      while (inFlight.length < depth && due()) {
        const next = this.launch();
        if (!next) return;
        inFlight.push(next);
      }
    };
    for (;;) {
      if (inFlight.length < depth && this.waiting.length > 0) {
        // A turn of the event loop first: requests submitted together share the step, and on the CPU (which computes
        // on this thread) the last step's answers are written before the next step runs.
        await nextTurn();
        fill();
      }
      const oldest = inFlight[0];
      if (!oldest) return;
      // The oldest step's end, or a request that can start beside it, or the moment the next step is due.
      const room = inFlight.length < depth;
      const arrival = room ? new Promise<null>((resolve) => (this.wake = () => resolve(null))) : null;
      // Armed whenever a request waits, even at a delay of 0: time passes between fill()'s check and this one, and a
      // step that became due in between must not wait for the oldest step's end.
      let timer: NodeJS.Timeout | undefined;
      const dueAt =
        room && this.waiting.length > 0
          ? new Promise<null>(
              (resolve) => (timer = setTimeout(() => resolve(null), this.pacer.delay(performance.now()))),
            )
          : null;
      const outcome = await Promise.race([oldest.outcome, ...(arrival ? [arrival] : []), ...(dueAt ? [dueAt] : [])]);
      clearTimeout(timer);
      this.wake = null;
      if (!outcome) continue;
      inFlight.shift();
      this.pacer.finished(performance.now());
      // A device computing apart starts on whatever is due before these answers are written, so the writing overlaps
      // its work.
      if (depth > 1) fill();
      this.deliver(oldest.batch, outcome);
    }
  }
}
