import { Worker } from 'node:worker_threads';
import { UserError } from '../util/errors.ts';
import {
  COMPILING,
  type GrammarReply,
  type GrammarRequest,
  HEADER_INTS,
  maskWords,
  type SlotState,
  stateIndex,
  versionIndex,
} from './shared-state.ts';
import { type GrammarSpec, grammarKey } from './spec.ts';
import type { GrammarVocabulary } from './vocabulary.ts';

/** How long the step loop waits for a mask before deciding the worker is gone. */
const MASK_TIMEOUT_MS = 60_000;

export interface GrammarServiceOptions {
  /** Read when the worker starts (the first request with a grammar). */
  vocabulary: () => GrammarVocabulary;
  /** Width of a logit row (at least the tokenizer's vocabulary). */
  vocabSize: number;
  stopTokenIds: readonly number[];
  /** Matchers open at once. */
  capacity: number;
}

/**
 * Structured output for one tokenizer: specs are compiled in a worker thread that owns xgrammar (never on the event
 * loop) and cached there by `grammarKey`; each constrained sequence has a matcher in that worker whose next-token
 * bitmask the worker computes while the step loop runs the next forward, and publishes in shared memory.
 */
export class GrammarService {
  private worker: Worker | null = null;
  private readonly status: Int32Array;
  private readonly masks: Int32Array;
  readonly words: number;
  private readonly compiles = new Map<string, Promise<string>>();
  private readonly waiters = new Map<string, { resolve: (key: string) => void; reject: (e: Error) => void }[]>();
  private readonly freeSlots: number[];
  /** Per slot, the versions asked of the worker so far (a reused slot may still have answers in flight). */
  private readonly issued: Int32Array;
  private accepts: number[] = [];

  constructor(private readonly options: GrammarServiceOptions) {
    this.words = maskWords(options.vocabSize);
    this.status = new Int32Array(new SharedArrayBuffer(4 * (HEADER_INTS + 2 * options.capacity)));
    this.masks = new Int32Array(new SharedArrayBuffer(4 * this.words * options.capacity));
    this.issued = new Int32Array(options.capacity);
    this.freeSlots = Array.from({ length: options.capacity }, (_, i) => options.capacity - 1 - i);
  }

  /** Compiles a spec (or finds it compiled); resolves to its key. An invalid spec rejects with a UserError. */
  compile(spec: GrammarSpec): Promise<string> {
    const key = grammarKey(spec);
    const known = this.compiles.get(key);
    if (known) return known;
    const done = new Promise<string>((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(key, list);
    });
    this.compiles.set(key, done);
    // A failed spec is not cached: the next request with it gets the same error afresh.
    done.catch(() => this.compiles.delete(key));
    try {
      this.send({ op: 'compile', key, spec });
      this.start().ref();
    } catch (err) {
      this.waiters.delete(key);
      this.compiles.delete(key);
      return Promise.reject(new UserError(`structured output: ${(err as Error).message}`));
    }
    return done;
  }

  /** A matcher at the start of a compiled grammar; its first mask is computed at once. */
  open(key: string, stopTokenIds: readonly number[]): SequenceGrammar {
    const slot = this.freeSlots.pop();
    if (slot === undefined) {
      throw new UserError(`too many requests with structured output at once (at most ${this.options.capacity})`);
    }
    this.issued[slot]!++;
    this.send({ op: 'open', slot, key, stopTokenIds: [...stopTokenIds] });
    return new SequenceGrammar(this, slot);
  }

  /** True while the worker compiles: the masks it owes come after. */
  get compiling(): boolean {
    return Atomics.load(this.status, COMPILING) === 1;
  }

  /** Sends the tokens accepted since the last flush (one message a step). */
  flush(): void {
    if (this.accepts.length === 0) return;
    this.send({ op: 'advance', items: this.accepts });
    this.accepts = [];
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  /** @internal */
  queueAccept(slot: number, token: number): void {
    this.accepts.push(slot, token);
    this.issued[slot]!++;
  }

  /** @internal Waits (blocking: the worker answers in microseconds unless it compiles) for the slot's last answer. */
  waitFor(slot: number): SlotState {
    const at = versionIndex(slot);
    const version = this.issued[slot]!;
    const deadline = Date.now() + MASK_TIMEOUT_MS;
    for (let v = Atomics.load(this.status, at); v < version; v = Atomics.load(this.status, at)) {
      const left = deadline - Date.now();
      if (left <= 0 || !this.worker) throw new Error('the grammar worker did not answer');
      Atomics.wait(this.status, at, v, left);
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
    this.send({ op: 'close', slot });
    this.freeSlots.push(slot);
  }

  private send(req: GrammarRequest): void {
    this.start().postMessage(req);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const { vocabulary, vocabSize, stopTokenIds } = this.options;
    const worker = new Worker(new URL('./grammar-worker-entry.mjs', import.meta.url), {
      workerData: { ...vocabulary(), vocabSize, stopTokenIds, status: this.status.buffer, masks: this.masks.buffer },
    });
    worker.on('message', (m: GrammarReply) => this.onReply(m));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new Error('the grammar worker stopped'));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private onReply(m: GrammarReply): void {
    if (m.op === 'failed') {
      this.failAll(new Error(`grammar worker: ${m.error}`));
      return;
    }
    const list = this.waiters.get(m.key) ?? [];
    this.waiters.delete(m.key);
    for (const w of list) {
      if (m.error !== undefined) w.reject(new UserError(m.error));
      else w.resolve(m.key);
    }
    // An idle worker must not keep the process alive.
    if (this.waiters.size === 0) this.worker?.unref();
  }

  private failAll(err: Error): void {
    for (const list of this.waiters.values()) for (const w of list) w.reject(err);
    this.waiters.clear();
    this.compiles.clear();
  }
}

/** One sequence's matcher: the mask of its next token, then the token drawn. */
export class SequenceGrammar {
  private released = false;

  constructor(
    private readonly service: GrammarService,
    private readonly slot: number,
  ) {}

  /** Whether the next mask is already published (no wait). */
  get ready(): boolean {
    return this.service.isPublished(this.slot);
  }

  /** The state after the last token, waiting for the worker if needed. */
  state(): SlotState {
    return this.service.waitFor(this.slot);
  }

  /** The allowed next tokens (valid until the next `accept`); call after `state()` says Running or Complete. */
  mask(): Int32Array {
    return this.service.mask(this.slot);
  }

  /** Records the drawn token; the worker advances and computes the next mask after the step's `flush()`. */
  accept(token: number): void {
    this.service.queueAccept(this.slot, token);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.service.release(this.slot);
  }
}
