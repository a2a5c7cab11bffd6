import { Worker } from 'node:worker_threads';
import type { TextTokenizer, TokenizerGenerationIds } from './tokenizer.ts';

/** How request text becomes token ids without holding the event loop. */
export interface PromptEncoder {
  /** `addSpecialTokens` (default true) adds the tokenizer's BOS/EOS as `TextTokenizer.encode` does. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]>;
  close(): Promise<void>;
}

/** Where and from which length texts are encoded in the worker (tests substitute an entry that waits on a latch). */
export interface TokenizerWorkerOptions {
  /** Texts at least this long go to the worker (default 4096 characters). */
  minChars?: number;
  /** The worker's entry module (default: tokenizer-worker-entry.mjs); `data` joins its workerData. */
  entry?: URL;
  data?: Record<string, unknown>;
}

/** Prompts at least this long are encoded in the worker; shorter ones cost less than the round trip. */
const WORKER_MIN_CHARS = 4096;

/**
 * Encodes prompts without holding the event loop: short texts inline, long ones in a worker thread that loads the
 * same tokenizer (started on first use). LightLLM's split of tokenization from inference, for Node.
 */
export class BackgroundTokenizer implements PromptEncoder {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (ids: number[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(
    private readonly inline: TextTokenizer,
    private readonly dir: string,
    private readonly generation?: TokenizerGenerationIds,
    private readonly options: TokenizerWorkerOptions = {},
  ) {}

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    const addSpecialTokens = opts.addSpecialTokens ?? true;
    if (text.length < (this.options.minChars ?? WORKER_MIN_CHARS)) {
      return Promise.resolve(this.inline.encode(text, { addSpecialTokens }));
    }
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, text, addSpecialTokens });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const entry = this.options.entry ?? new URL('./tokenizer-worker-entry.mjs', import.meta.url);
    const worker = new Worker(entry, {
      workerData: { ...this.options.data, dir: this.dir, generation: this.generation },
    });
    worker.on('message', (m: { id: number; ids?: number[]; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      // An idle worker must not keep the process alive.
      if (this.pending.size === 0) worker.unref();
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.ids!);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new Error('the tokenizer worker stopped'));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** Inline encoding behind the same async call, for tokenizers with no folder to load in a worker (tests). */
export function inlineEncoder(tokenizer: TextTokenizer): PromptEncoder {
  return {
    encode: async (text, opts) => tokenizer.encode(text, { addSpecialTokens: opts?.addSpecialTokens ?? true }),
    close: async () => {},
  };
}
