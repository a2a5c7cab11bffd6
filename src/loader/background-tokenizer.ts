import { Worker } from 'node:worker_threads';
import type { TextTokenizer, TokenizerGenerationIds } from './tokenizer.ts';

/** Prompts at least this long are encoded in the worker; shorter ones cost less than the round trip. */
const WORKER_MIN_CHARS = 4096;

/**
 * Encodes prompts without holding the event loop: short texts inline, long ones in a worker thread that loads the
 * same tokenizer (started on first use). LightLLM's split of tokenization from inference, for Node.
 */
export class BackgroundTokenizer {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (ids: number[]) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(
    private readonly inline: TextTokenizer,
    private readonly dir: string,
    private readonly generation?: TokenizerGenerationIds,
    private readonly minChars = WORKER_MIN_CHARS,
  ) {}

  encode(text: string): Promise<number[]> {
    if (text.length < this.minChars) return Promise.resolve(this.inline.encode(text));
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, text });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./tokenizer-worker-entry.mjs', import.meta.url), {
      workerData: { dir: this.dir, generation: this.generation },
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
