import { Worker } from 'node:worker_threads';
import { UserError } from '../util/errors.ts';
import { SequenceGrammar } from './sequence-grammar.ts';
import {
  type GrammarReply,
  type GrammarRequest,
  maskWords,
  SlotState,
  stateIndex,
  versionIndex,
} from './shared-state.ts';
import { type GrammarSpec, grammarKey } from './spec.ts';
import type { GrammarVocabulary } from './vocabulary.ts';
import { compileWorker, defaultGrammarWorkers, matcherWorker, type WorkerLoad } from './worker-placement.ts';

/** How long the step loop waits for a mask before deciding the worker is gone. */
const MASK_TIMEOUT_MS = 60_000;
/** How long a worker with compiles queued may go without finishing one before it is deemed stuck and replaced. */
const COMPILE_TIMEOUT_MS = 60_000;
/** The longest single wait: a worker's failure flag set just before a wait began is seen within this. */
const WAIT_SLICE_MS = 100;

export interface GrammarServiceOptions {
  /** Read when the first worker starts (the first request with a grammar). */
  vocabulary: () => GrammarVocabulary;
  /** Width of a logit row (at least the tokenizer's vocabulary). */
  vocabSize: number;
  stopTokenIds: readonly number[];
  /** Matchers open at once. */
  capacity: number;
  /** Grammar workers at most (default: `defaultGrammarWorkers()`, from the host's cores). */
  workers?: number;
  /** Default COMPILE_TIMEOUT_MS (tests shorten it). */
  compileTimeoutMs?: number;
}

/** One worker thread with its own xgrammar: the grammars it compiled, and the matchers over them. */
interface GrammarWorker extends WorkerLoad {
  thread: Worker;
  /** Set once the worker failed: resolves when its thread has stopped. */
  stopped?: Promise<unknown>;
  /** Why it failed, as its matchers' requests are told. */
  failure?: Error;
  /** Whether `failure` is the worker's own reason, not only what its flag or its exit showed. */
  failureTold?: boolean;
  /** Shared with the thread, which sets it to 1 once it failed (see grammar-worker.ts `publishFailure`). */
  failedFlag: Int32Array;
  /** Whether the thread has set up (compiles are timed from then). */
  ready: boolean;
  /** Armed while compiles are queued: fails the worker when none finishes in time (a compile that never returns). */
  watchdog?: NodeJS.Timeout;
}

/**
 * Structured output for one tokenizer. Specs are compiled in worker threads that own xgrammar (never on the event
 * loop) and cached there by `grammarKey`; a sequence's matcher lives in the worker that compiled its grammar, which
 * computes its next-token bitmask while the step loop runs the next forward and publishes it in shared memory. A new
 * spec compiles on a worker with no compile in flight and the fewest open matchers (starting another when the first
 * is busy), so a long compile holds up only requests whose grammars live on that worker; and a grammar many requests
 * share is compiled on more workers as its matchers pile up (see worker-placement.ts), so that a step's masks are
 * computed in parallel.
 */
export class GrammarService {
  private readonly workers: GrammarWorker[] = [];
  private readonly maxWorkers: number;
  private readonly status: Int32Array;
  private readonly masks: Int32Array;
  readonly words: number;
  /** Per spec key: the spec, the workers that compiled it (or are compiling it), and the first compile's outcome. */
  private readonly grammars = new Map<string, { spec: GrammarSpec; holders: GrammarWorker[]; done: Promise<string> }>();
  private readonly waiters = new Map<string, { resolve: (key: string) => void; reject: (e: Error) => void }>();
  private readonly freeSlots: number[];
  /**
   * Released slots whose last worker may still owe answers (an accept flushed after the close, or queued behind a
   * compile): a slot is reused only once its version has caught up, or it would read its old worker's late writes.
   */
  private readonly draining: { slot: number; worker: GrammarWorker }[] = [];
  private readonly slotWorker: (GrammarWorker | null)[];
  /** Per slot, why its worker failed (its matcher is gone), or null. */
  private readonly slotFailure: (Error | null)[];
  /** Open matchers whose worker failed (the engine looks for their requests only while there are any). */
  failedMatchers = 0;
  /** Per slot, the versions asked of its worker so far (a reused slot may still have answers in flight). */
  private readonly issued: Int32Array;
  private readonly accepts = new Map<GrammarWorker, number[]>();
  private vocabulary: GrammarVocabulary | null = null;

  constructor(private readonly options: GrammarServiceOptions) {
    this.words = maskWords(options.vocabSize);
    this.maxWorkers = options.workers ?? defaultGrammarWorkers();
    this.status = new Int32Array(new SharedArrayBuffer(4 * 2 * options.capacity));
    this.masks = new Int32Array(new SharedArrayBuffer(4 * this.words * options.capacity));
    this.issued = new Int32Array(options.capacity);
    this.slotWorker = new Array(options.capacity).fill(null);
    this.slotFailure = new Array(options.capacity).fill(null);
    this.freeSlots = Array.from({ length: options.capacity }, (_, i) => options.capacity - 1 - i);
  }

  /** Compiles a spec (or finds it compiled); resolves to its key. An invalid spec rejects with a UserError. */
  compile(spec: GrammarSpec): Promise<string> {
    const key = grammarKey(spec);
    const known = this.grammars.get(key);
    if (known) return known.done;
    let worker: GrammarWorker;
    try {
      worker = this.placed(compileWorker(this.workers, this.maxWorkers));
    } catch (err) {
      return Promise.reject(new UserError(`structured output: ${(err as Error).message}`));
    }
    const done = new Promise<string>((resolve, reject) => this.waiters.set(key, { resolve, reject }));
    this.grammars.set(key, { spec, holders: [worker], done });
    // A failed spec is not cached: the next request with it gets the same error afresh.
    done.catch(() => this.grammars.delete(key));
    this.sendCompile(worker, key, spec);
    return done;
  }

  /** A matcher at the start of a compiled grammar; its first mask is computed at once. */
  open(key: string, stopTokenIds: readonly number[]): SequenceGrammar {
    const grammar = this.grammars.get(key);
    if (!grammar) throw new Error(`grammar ${key} is not compiled`);
    this.reclaimDrained();
    if (this.freeSlots.length === 0) {
      throw new UserError(`too many requests with structured output at once (at most ${this.options.capacity})`);
    }
    const worker = this.placed(matcherWorker(this.workers, grammar.holders, this.maxWorkers));
    if (!grammar.holders.includes(worker)) {
      // Its masks wait behind this compile: the step loop defers them meanwhile (`blocked`), as for any compile.
      grammar.holders.push(worker);
      this.sendCompile(worker, key, grammar.spec);
    }
    const slot = this.freeSlots.pop()!;
    this.slotWorker[slot] = worker;
    this.slotFailure[slot] = null;
    worker.open++;
    this.issued[slot]!++;
    this.send(worker, { op: 'open', slot, key, spec: grammar.spec, stopTokenIds: [...stopTokenIds] });
    return new SequenceGrammar(this, slot);
  }

  /** Open matchers per worker, in the order the workers started. */
  get load(): number[] {
    return this.workers.map((w) => w.open);
  }

  /** Sends the tokens accepted since the last flush (one message per worker a step). */
  flush(): void {
    for (const [worker, items] of this.accepts) if (items.length > 0) this.send(worker, { op: 'advance', items });
    this.accepts.clear();
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    for (const w of workers) clearTimeout(w.watchdog);
    await Promise.all(workers.map((w) => w.thread.terminate()));
  }

  /** @internal */
  queueAccept(slot: number, token: number): void {
    const worker = this.slotWorker[slot]!;
    const list = this.accepts.get(worker) ?? [];
    list.push(slot, token);
    this.accepts.set(worker, list);
    this.issued[slot]!++;
  }

  /** @internal Whether the slot's worker has a compile queued or running (its masks may come after it). */
  isBlocked(slot: number): boolean {
    return (this.slotWorker[slot]?.compiling ?? 0) > 0;
  }

  /** @internal Why the slot's matcher is gone (its worker failed), or null. */
  failureOf(slot: number): Error | null {
    return this.slotFailure[slot]!;
  }

  /**
   * @internal Waits (blocking: the worker answers in microseconds unless it compiles) for the slot's last answer.
   * A worker that failed, or stays silent past the timeout, fails its own matchers (their requests fail at the next
   * step) and this returns `Failed`: no one else's request is touched.
   */
  waitFor(slot: number): SlotState {
    if (this.slotFailure[slot]) return SlotState.Failed;
    const worker = this.slotWorker[slot]!;
    const at = versionIndex(slot);
    const version = this.issued[slot]!;
    const deadline = Date.now() + MASK_TIMEOUT_MS;
    for (let v = Atomics.load(this.status, at); v < version; v = Atomics.load(this.status, at)) {
      // Its 'failed' message (with the reason) may still be queued behind this step: fail it now, by its flag.
      if (Atomics.load(worker.failedFlag, 0) !== 0) {
        this.failWorker(worker, new Error('a grammar worker failed'), false);
        return SlotState.Failed;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.failWorker(worker, new Error(`the grammar worker did not answer in ${MASK_TIMEOUT_MS / 1000} s`));
        return SlotState.Failed;
      }
      Atomics.wait(this.status, at, v, Math.min(left, WAIT_SLICE_MS));
    }
    return Atomics.load(this.status, stateIndex(slot)) as SlotState;
  }

  /** @internal */
  isPublished(slot: number): boolean {
    return Atomics.load(this.status, versionIndex(slot)) >= this.issued[slot]!;
  }

  /** @internal */
  mask(slot: number): Int32Array {
    return this.masks.subarray(slot * this.words, (slot + 1) * this.words);
  }

  /** @internal */
  release(slot: number): void {
    const worker = this.slotWorker[slot]!;
    worker.open--;
    this.slotWorker[slot] = null;
    if (this.slotFailure[slot]) this.failedMatchers--;
    else this.send(worker, { op: 'close', slot });
    this.draining.push({ slot, worker });
    if (worker.stopped) void worker.stopped.then(() => this.settle(worker));
  }

  /** Frees the draining slots whose versions have caught up with what was issued. */
  private reclaimDrained(): void {
    for (let i = this.draining.length - 1; i >= 0; i--) {
      const { slot } = this.draining[i]!;
      if (!this.isPublished(slot)) continue;
      this.draining.splice(i, 1);
      this.freeSlots.push(slot);
    }
  }

  /**
   * A failed worker never publishes the versions it owed: once its thread has stopped (no late write can come), its
   * draining slots count them as published, so a new matcher in one waits only for its own answers.
   */
  private settle(worker: GrammarWorker): void {
    for (const d of this.draining) {
      if (d.worker === worker) Atomics.store(this.status, versionIndex(d.slot), this.issued[d.slot]!);
    }
  }

  private placed(choice: GrammarWorker | 'new'): GrammarWorker {
    return choice === 'new' ? this.startWorker() : choice;
  }

  private sendCompile(worker: GrammarWorker, key: string, spec: GrammarSpec): void {
    worker.compiling++;
    worker.thread.ref();
    if (worker.compiling === 1 && worker.ready) this.armWatchdog(worker);
    this.send(worker, { op: 'compile', key, spec });
  }

  /** (Re)starts the worker's compile deadline: each finished compile gives the next queued one the full time. */
  private armWatchdog(worker: GrammarWorker): void {
    clearTimeout(worker.watchdog);
    const ms = this.options.compileTimeoutMs ?? COMPILE_TIMEOUT_MS;
    worker.watchdog = setTimeout(
      () => this.failWorker(worker, new Error(`a grammar compile did not finish in ${ms / 1000} s`)),
      ms,
    );
    worker.watchdog.unref();
  }

  private send(worker: GrammarWorker, req: GrammarRequest): void {
    worker.thread.postMessage(req);
  }

  private startWorker(): GrammarWorker {
    this.vocabulary ??= this.options.vocabulary();
    const { vocabSize, stopTokenIds } = this.options;
    const failedFlag = new Int32Array(new SharedArrayBuffer(4));
    const thread = new Worker(new URL('./grammar-worker-entry.mjs', import.meta.url), {
      workerData: {
        ...this.vocabulary,
        vocabSize,
        stopTokenIds,
        status: this.status.buffer,
        masks: this.masks.buffer,
        failed: failedFlag.buffer,
      },
    });
    const worker: GrammarWorker = { thread, compiling: 0, open: 0, failedFlag, ready: false };
    thread.on('message', (m: GrammarReply) => this.onReply(worker, m));
    thread.on('error', (err) => this.failWorker(worker, err));
    thread.on('exit', () => this.failWorker(worker, new Error('a grammar worker stopped'), false));
    thread.unref();
    this.workers.push(worker);
    return worker;
  }

  private onReply(worker: GrammarWorker, m: GrammarReply): void {
    if (m.op === 'ready') {
      worker.ready = true;
      if (worker.compiling > 0) this.armWatchdog(worker);
      return;
    }
    if (m.op === 'failed') {
      this.failWorker(worker, new Error(`grammar worker: ${m.error}`));
      return;
    }
    worker.compiling--;
    if (worker.compiling > 0) this.armWatchdog(worker);
    else clearTimeout(worker.watchdog);
    const waiter = this.waiters.get(m.key);
    this.waiters.delete(m.key);
    if (m.error !== undefined) {
      waiter?.reject(new UserError(m.error));
      // A spread compile that failed leaves the grammar on its other workers only: no matcher may open here.
      const holders = this.grammars.get(m.key)?.holders;
      if (holders?.includes(worker)) holders.splice(holders.indexOf(worker), 1);
    } else waiter?.resolve(m.key);
    // An idle worker must not keep the process alive.
    if (worker.compiling === 0) worker.thread.unref();
  }

  /** `told`: `err` is the worker's own reason (its message or an error it threw), not what its flag or exit showed. */
  private failWorker(worker: GrammarWorker, err: Error, told = true): void {
    const known = worker.failure;
    if (known) {
      // Seen first by its flag: the requests not yet failed get the worker's own reason when it comes.
      if (told && !worker.failureTold) {
        this.slotFailure.forEach((f, slot) => {
          if (f === known) this.slotFailure[slot] = err;
        });
        worker.failure = err;
        worker.failureTold = true;
      }
      return;
    }
    worker.failure = err;
    worker.failureTold = told;
    clearTimeout(worker.watchdog);
    const i = this.workers.indexOf(worker);
    if (i >= 0) this.workers.splice(i, 1);
    // A worker that reported a failure may still be running: end it, so that no thread outlives its service.
    worker.stopped ??= worker.thread.terminate();
    void worker.stopped.then(() => this.settle(worker));
    // Its matchers are gone: their requests fail (the engine asks `failure` before each step), no one else's.
    this.slotWorker.forEach((w, slot) => {
      if (w !== worker || this.slotFailure[slot]) return;
      this.slotFailure[slot] = err;
      this.failedMatchers++;
    });
    for (const [key, g] of [...this.grammars]) {
      if (!g.holders.includes(worker)) continue;
      g.holders.splice(g.holders.indexOf(worker), 1);
      if (g.holders.length > 0) continue;
      this.grammars.delete(key);
      this.waiters.get(key)?.reject(err);
      this.waiters.delete(key);
    }
  }
}
