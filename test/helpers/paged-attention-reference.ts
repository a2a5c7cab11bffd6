/**
 * Float64 reference for the paged attention kernels (flash_prefill, paged_decode) and a generator of random paged
 * problems. Values are representable in the kernels' storage type (bf16 or fp16) so the GPU and the reference see
 * identical inputs.
 */

import { f16Bits, halfToFloat } from '../../src/primitives/float-bits.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** The 16-bit storage types of the attention kernels. */
export type Storage16 = 'bf16' | 'f16';
/** One sequence of a step: `qLen` query tokens at the end of `ctxLen` keys. */
export interface SeqShape {
  qLen: number;
  ctxLen: number;
}

export interface PagedAttentionProblem {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  numBlocks: number;
  scale: number;
  slidingWindow: number;
  /** Attention-logit soft-cap: scores become cap * tanh(score / cap); 0 = off. */
  softcap: number;
  seqs: readonly SeqShape[];
  /** `[T, Hq*D]`, sequences' query tokens concatenated. */
  q: Float32Array;
  /** `[numBlocks, blockSize, Hk, D]`. */
  kCache: Float32Array;
  vCache: Float32Array;
  /** `[S, maxBlocksPerSeq]`, padded with 0. */
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  contextLens: Int32Array;
  cuSeqlensQ: Int32Array;
  /** The same keys and values per sequence, unpaged: `[ctxLen, Hk, D]` each. */
  logicalK: Float32Array[];
  logicalV: Float32Array[];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits of x, rounded to nearest even. */
export function toBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16Bits(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}

/** Bits and values of either 16-bit storage type (round to nearest even). */
export const STORAGE16: Record<Storage16, { toBits(x: number): number; fromBits(bits: number): number }> = {
  bf16: { toBits: toBf16Bits, fromBits: fromBf16Bits },
  f16: { toBits: f16Bits, fromBits: halfToFloat },
};

export function toStorageArray(x: Float32Array, dtype: Storage16): Uint16Array {
  const { toBits } = STORAGE16[dtype];
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toBits(x[i]!);
  return out;
}

export function fromStorageArray(x: Uint16Array, dtype: Storage16): Float32Array {
  const { fromBits } = STORAGE16[dtype];
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = fromBits(x[i]!);
  return out;
}

/** A paged attention problem's sizes: its sequences, heads, block size, and sliding window and softcap if any. */
export interface PagedShape {
  seqs: readonly SeqShape[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  slidingWindow?: number;
  softcap?: number;
}

/**
 * A random problem: `dtype` (default bf16) values uniform in [-qRange, qRange] for queries and [-1, 1] for keys and values, and each
 * sequence's blocks drawn from a shuffled pool so tables are not contiguous. Cache slots no sequence owns hold
 * large garbage values that must never be read.
 */
export function makePagedProblem(
  opts: PagedShape & { seed: number; qRange?: number; dtype?: Storage16 },
): PagedAttentionProblem {
  const { seqs, numHeads, numKvHeads, headDim: D, blockSize } = opts;
  const rand = mulberry32(opts.seed);
  const { toBits, fromBits } = STORAGE16[opts.dtype ?? 'bf16'];
  const round = (x: number) => fromBits(toBits(x));
  const uniform = (r: number) => round((rand() * 2 - 1) * r);
  const blocksPer = seqs.map((s) => Math.ceil(s.ctxLen / blockSize));
  const maxBlocksPerSeq = Math.max(1, ...blocksPer);
  const numBlocks = blocksPer.reduce((a, b) => a + b, 0) + 3;
  const pool = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const rowElems = numKvHeads * D;
  const kCache = new Float32Array(numBlocks * blockSize * rowElems).fill(round(300));
  const vCache = new Float32Array(numBlocks * blockSize * rowElems).fill(round(-500));
  const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq);
  const contextLens = new Int32Array(seqs.length);
  const cuSeqlensQ = new Int32Array(seqs.length + 1);
  const logicalK: Float32Array[] = [];
  const logicalV: Float32Array[] = [];
  let next = 0;
  seqs.forEach((s, si) => {
    if (s.qLen < 1 || s.qLen > s.ctxLen) throw new Error(`bad sequence shape ${JSON.stringify(s)}`);
    for (let b = 0; b < blocksPer[si]!; b++) blockTables[si * maxBlocksPerSeq + b] = pool[next++]!;
    contextLens[si] = s.ctxLen;
    cuSeqlensQ[si + 1] = cuSeqlensQ[si]! + s.qLen;
    const k = new Float32Array(s.ctxLen * rowElems).map(() => uniform(1));
    const v = new Float32Array(s.ctxLen * rowElems).map(() => uniform(1));
    for (let t = 0; t < s.ctxLen; t++) {
      const slot = blockTables[si * maxBlocksPerSeq + Math.floor(t / blockSize)]! * blockSize + (t % blockSize);
      kCache.set(k.subarray(t * rowElems, (t + 1) * rowElems), slot * rowElems);
      vCache.set(v.subarray(t * rowElems, (t + 1) * rowElems), slot * rowElems);
    }
    logicalK.push(k);
    logicalV.push(v);
  });
  const totalQ = cuSeqlensQ[seqs.length]!;
  const q = new Float32Array(totalQ * numHeads * D).map(() => uniform(opts.qRange ?? 2));
  return {
    numHeads,
    numKvHeads,
    headDim: D,
    blockSize,
    numBlocks,
    scale: 1 / Math.sqrt(D),
    slidingWindow: opts.slidingWindow ?? 0,
    softcap: opts.softcap ?? 0,
    seqs,
    q,
    kCache,
    vCache,
    blockTables,
    maxBlocksPerSeq,
    contextLens,
    cuSeqlensQ,
    logicalK,
    logicalV,
  };
}

/**
 * Causal paged attention in float64, read through the block tables: out `[T, Hq*D]` and the natural-log
 * log-sum-exp of scale * q.k (soft-capped where `softcap` is set) per (token, head), `[T, Hq]`.
 */
export function referencePagedAttention(p: PagedAttentionProblem): { out: Float64Array; lse: Float64Array } {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, blockSize, slidingWindow: W } = p;
  const group = Hq / Hk;
  const totalQ = p.cuSeqlensQ[p.seqs.length]!;
  const out = new Float64Array(totalQ * Hq * D);
  const lse = new Float64Array(totalQ * Hq);
  const scores = new Float64Array(Math.max(1, ...p.contextLens));
  for (let s = 0; s < p.seqs.length; s++) {
    const ctx = p.contextLens[s]!;
    const q0 = p.cuSeqlensQ[s]!;
    const qLen = p.cuSeqlensQ[s + 1]! - q0;
    const rowOf = (key: number) =>
      (p.blockTables[s * p.maxBlocksPerSeq + Math.floor(key / blockSize)]! * blockSize + (key % blockSize)) * Hk;
    for (let i = 0; i < qLen; i++) {
      const pos = ctx - qLen + i;
      const lo = W > 0 ? Math.max(0, pos - W + 1) : 0;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / group);
        const qOff = ((q0 + i) * Hq + h) * D;
        let max = -Infinity;
        for (let j = lo; j <= pos; j++) {
          const kOff = (rowOf(j) + kvh) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += p.q[qOff + d]! * p.kCache[kOff + d]!;
          scores[j] = p.softcap > 0 ? p.softcap * Math.tanh((dot * p.scale) / p.softcap) : dot * p.scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = lo; j <= pos; j++) sum += Math.exp(scores[j]! - max);
        for (let j = lo; j <= pos; j++) {
          const w = Math.exp(scores[j]! - max) / sum;
          const vOff = (rowOf(j) + kvh) * D;
          for (let d = 0; d < D; d++) out[qOff + d] += w * p.vCache[vOff + d]!;
        }
        lse[(q0 + i) * Hq + h] = max + Math.log(sum);
      }
    }
  }
  return { out, lse };
}

/** ||a - b|| / ||b||; NaN anywhere gives Infinity. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i]! - b[i]!;
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / den);
}

/** Largest |a - b|; NaN anywhere gives Infinity. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    m = Math.max(m, d);
  }
  return m;
}
