import type { TextTokenizer } from '../../src/loader/tokenizer.ts';
import { selectKeys } from '../../src/models/kv-compression.ts';
import type { StepLogits, StepRunner } from '../../src/runner/model-runner.ts';
import { buildStepBatch, type ScheduledChunk } from '../../src/runner/step-batch.ts';

/**
 * A stand-in model that really uses the paged cache: it stores each token id at its slot and computes a step's
 * logits from the context it reads back through the block table. Wrong block tables, a missing copy-on-write or a
 * bad prefix-cache hit change the context it sees, hence its outputs; `referenceLogits` is the same function over a
 * plain token list. KV compression keeps the entries `selectKeys` picks by `fakeKeyScore` (one KV head), after
 * the step's logits are read, as a model compacts after attention; `positions` records each slot's token position.
 */
export class FakeRunner implements StepRunner {
  readonly cache: Int32Array;
  readonly positions: Int32Array;
  steps = 0;
  tokensComputed = 0;

  constructor(
    readonly vocabSize: number,
    numBlocks: number,
    readonly blockSize: number,
    /** The next-token logits of a context read back from the cache. */
    readonly logitsOf: (context: readonly number[], vocab: number) => Float32Array = referenceLogits,
  ) {
    this.cache = new Int32Array(numBlocks * blockSize).fill(-1);
    this.positions = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][]): StepLogits {
    const bs = this.blockSize;
    for (const [src, dst] of copies) {
      this.cache.copyWithin(dst * bs, src * bs, (src + 1) * bs);
      this.positions.copyWithin(dst * bs, src * bs, (src + 1) * bs);
    }
    const b = buildStepBatch(chunks, bs);
    for (let t = 0; t < b.inputIds.length; t++) {
      this.cache[b.slotMapping[t]!] = b.inputIds[t]!;
      this.positions[b.slotMapping[t]!] = b.positions[t]!;
    }
    const slot = (s: number, entry: number) =>
      b.blockTables[s * b.maxBlocksPerSeq + Math.floor(entry / bs)]! * bs + (entry % bs);
    const out = new Float32Array(b.logitsIndices.length * this.vocabSize);
    b.logitsIndices.forEach((t, row) => {
      let s = 0;
      while (b.cuSeqlensQ[s + 1]! <= t) s++;
      // Row t's own entry: the sequence's entries end with this step's rows.
      const own = b.contextLens[s]! - (b.cuSeqlensQ[s + 1]! - t);
      const context: number[] = [];
      for (let e = 0; e <= own; e++) context.push(this.cache[slot(s, e)]!);
      out.set(this.logitsOf(context, this.vocabSize), row * this.vocabSize);
    });
    for (const plan of b.kvCompression ?? []) {
      const keys = b.contextLens[plan.seq]! - plan.window;
      const scores = Float32Array.from({ length: keys }, (_, e) => {
        const at = slot(plan.seq, e);
        return fakeKeyScore(this.cache[at]!, this.positions[at]!);
      });
      selectKeys(scores, [plan], b.contextLens, 1).forEach((from, to) => {
        this.cache[slot(plan.seq, to)] = this.cache[slot(plan.seq, from)]!;
        this.positions[slot(plan.seq, to)] = this.positions[slot(plan.seq, from)]!;
      });
    }
    this.steps++;
    this.tokensComputed += b.inputIds.length;
    return hostLogits(out, this.vocabSize);
  }
}

/** Step logits that live on the host: rows are copied out of `all` (`[rows, vocab]`). */
export function hostLogits(all: Float32Array, vocab: number): StepLogits {
  return {
    toHost: (rows) => {
      const out = new Float32Array(rows.length * vocab);
      for (const [i, r] of rows.entries()) out.set(all.subarray(r * vocab, (r + 1) * vocab), i * vocab);
      return out;
    },
  };
}

/** The fake model's next-token logits for a context: a hash of the whole context spread over the vocabulary. */
export function referenceLogits(context: readonly number[], vocab: number): Float32Array {
  let h = 2166136261;
  for (const t of context) h = Math.imul(h ^ (t + 1), 16777619) >>> 0;
  const out = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    let x = Math.imul(h ^ Math.imul(i + 1, 0x9e3779b1), 0x85ebca6b) >>> 0;
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
    out[i] = (((x ^ (x >>> 16)) >>> 0) / 2 ** 32) * 8 - 4;
  }
  return out;
}

/** The fake model's SnapKV score of a cache entry: a hash of its token and position. */
export function fakeKeyScore(token: number, position: number): number {
  return (Math.imul((token + 1) * 7919 + position, 0x9e3779b1) >>> 0) / 2 ** 32;
}

/** Token 0 is EOS (no text); ids 1..26 are 'a'..'z'; the rest are two-letter pieces, so words span tokens. */
export function pieceOf(id: number): string {
  if (id === 0) return '';
  if (id <= 26) return String.fromCharCode(96 + id);
  return String.fromCharCode(97 + (id % 26)) + String.fromCharCode(97 + ((id * 7) % 26));
}

export const fakeTokenizer: TextTokenizer = {
  vocabSize: 64,
  bosTokenId: null,
  eosTokenIds: [0],
  encode: (text) => [...text].map((c) => c.charCodeAt(0) - 96).filter((id) => id >= 1 && id <= 26),
  decode: (ids) => ids.map(pieceOf).join(''),
};

export const fakeTextStream = () => ({ push: pieceOf });
