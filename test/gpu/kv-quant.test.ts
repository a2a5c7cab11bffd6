import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttentionSpec, Backend, LayerKvCache } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { allocPlane, writeRows } from '../../src/backend/cpu/kv-store.ts';
import { pagedOf } from '../../src/backend/cpu/step-context.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { FlashAttention, type PagedAttentionArgs } from '../../src/backend/cuda/flash-attention.ts';
import { DEFAULT_DECODE, decodeWorkspaceBytes } from '../../src/backend/cuda/flash-sizing.ts';
import { kvOf, type QuantKv } from '../../src/backend/cuda/kv-cache.ts';
import { type CudaKvQuant, KV_QUANT_DEFINE, q8PlanesOf } from '../../src/backend/cuda/kv-layout.ts';
import { QUANTIZE_AND_CACHE } from '../../src/backend/cuda/rope.ts';
import { selectKeys } from '../../src/models/kv-compression.ts';
import { E4M3 } from '../../src/primitives/fp8.ts';
import type { KvCompressionPlan } from '../../src/primitives/kv-compression.ts';
import { HALF } from '../../src/primitives/quant/codec.ts';
import type { StepBatch } from '../../src/primitives/step-batch.ts';
import { openCudaAttention } from '../helpers/cuda-attention.ts';
import { hostTensor, relL2 } from '../helpers/gpu.ts';
import {
  fromStorageArray,
  makePagedProblem,
  maxAbsDiff,
  type PagedAttentionProblem,
  referencePagedAttention,
  relativeL2,
  type SeqShape,
  STORAGE16,
  toStorageArray,
} from '../helpers/paged-attention-reference.ts';
import { problemBatch, referenceSnapKvScores } from '../helpers/snapkv-reference.ts';

const gpu = openCudaAttention();
const QUANTS: CudaKvQuant[] = ['fp8', 'q8_0'];

/** Device buffers freed at the end of each test. */
function buffers(h: CudaDriver) {
  const all: bigint[] = [];
  return {
    put(data: ArrayBufferView): bigint {
      const p = h.alloc(Math.max(4, data.byteLength));
      h.upload(p, data);
      all.push(p);
      return p;
    },
    alloc(bytes: number): bigint {
      const p = h.alloc(bytes);
      all.push(p);
      return p;
    },
    free() {
      for (const p of all) h.free(p);
    },
  };
}

/** The CPU twin's stored planes of `values` (`slots` rows of `row`): fp8 bytes, or q8_0 values and scales. */
function cpuPlanes(quant: CudaKvQuant, values: Float32Array, slots: number, row: number, scale: number) {
  const plane = allocPlane(quant, slots, row, false, scale);
  writeRows(
    plane,
    values,
    Int32Array.from({ length: slots }, (_, i) => i),
    row,
  );
  const bytes = plane.data as Uint8Array;
  if (quant === 'fp8') return { values: bytes, scales: new Uint16Array(0) };
  return q8PlanesOf(bytes, slots, row);
}

/** What the stored planes decode to (value = stored value x scale), as the CPU twin reads them. */
function decode(quant: CudaKvQuant, p: { values: Uint8Array; scales: Uint16Array }, scale: number): Float32Array {
  return Float32Array.from(p.values, (b, i) =>
    quant === 'fp8' ? E4M3[b]! * scale : ((b << 24) >> 24) * HALF[p.scales[Math.floor(i / 32)]!]!,
  );
}

test('quantize_and_cache stores the bytes the CPU twin stores (rounding, saturation, NaN, q8_0 scales), slot -1 skipped', {
  skip: gpu.skip,
}, () => {
  const h = gpu.drv!;
  const row = 4 * 64;
  const T = 6;
  const slots = 10;
  const slotMapping = Int32Array.from([7, -1, 0, 3, 9, -1]);
  // bf16 inputs over the whole e4m3 range: ties, subnormals, values past 448 (saturating), NaN, -0.
  const x = new Float32Array(T * row);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 1.7) * 2 ** ((i % 23) - 11);
  x[5] = Number.NaN;
  x[70] = 1000;
  x[71] = -460;
  x[72] = -0;
  x[73] = 2 ** -10;
  x[74] = 1.0625; // halfway between two e4m3 values: to even
  for (let i = 3 * row; i < 3 * row + 32; i++) x[i] = 0; // an all-zero q8_0 block
  const bits = toStorageArray(x, 'bf16');
  const xs = fromStorageArray(bits, 'bf16');
  for (const quant of QUANTS) {
    const b = buffers(h);
    try {
      const kScale = quant === 'fp8' ? 0.75 : 1;
      const k = b.put(bits);
      const v = b.put(
        toStorageArray(
          xs.map((y) => -y),
          'bf16',
        ),
      );
      const kCache = b.alloc(slots * row);
      const vCache = b.alloc(slots * row);
      const kScales = b.alloc(slots * (row / 32) * 2);
      const vScales = b.alloc(slots * (row / 32) * 2);
      for (const p of [kCache, vCache, kScales, vScales])
        h.fill32(p, 0xa5a5a5a5, (slots * row) / 4 / (p === kCache || p === vCache ? 1 : 16));
      gpu
        .rt!.kernel(QUANTIZE_AND_CACHE, 0, { PAGODA_DTYPE: 2, PAGODA_KV_QUANT: KV_QUANT_DEFINE[quant] })
        .launch([T], [128], {
          k,
          v,
          kCache,
          vCache,
          kScales,
          vScales,
          slotMapping: b.put(slotMapping),
          row,
          kScale,
          vScale: 1,
        });
      h.sync();
      const got = { k: new Uint8Array(slots * row), v: new Uint8Array(slots * row) };
      const gotScales = { k: new Uint16Array(slots * (row / 32)), v: new Uint16Array(slots * (row / 32)) };
      h.download(got.k, kCache);
      h.download(got.v, vCache);
      h.download(gotScales.k, kScales);
      h.download(gotScales.v, vScales);
      for (const side of ['k', 'v'] as const) {
        const src = side === 'k' ? xs : xs.map((y) => -y);
        const want = cpuPlanes(quant, src, T, row, side === 'k' ? kScale : 1);
        for (let t = 0; t < T; t++) {
          const slot = slotMapping[t]!;
          if (slot < 0) continue;
          assert.deepEqual(
            got[side].subarray(slot * row, (slot + 1) * row),
            want.values.subarray(t * row, (t + 1) * row),
            `${quant} ${side} token ${t}`,
          );
          if (quant === 'q8_0') {
            const n = row / 32;
            // A NaN scale (the block with x[5]) is compared as NaN: its sign bit is V8's arithmetic's.
            const scaleBits = (h: number) => ((h & 0x7c00) === 0x7c00 && h & 0x3ff ? 'NaN' : h);
            assert.deepEqual(
              [...gotScales[side].subarray(slot * n, (slot + 1) * n)].map(scaleBits),
              [...want.scales.subarray(t * n, (t + 1) * n)].map(scaleBits),
              `${quant} ${side} token ${t} scales`,
            );
          }
        }
        for (const slot of [1, 2, 4, 5, 6, 8]) {
          assert.ok(
            got[side].subarray(slot * row, (slot + 1) * row).every((y) => y === 0xa5),
            `${quant} slot ${slot} untouched`,
          );
        }
      }
    } finally {
      b.free();
    }
  }
});

interface Case {
  name: string;
  seqs: SeqShape[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  slidingWindow?: number;
  softcap?: number;
  /** The one cache type the case runs with. */
  only?: CudaKvQuant;
}

const CASES: Case[] = [
  {
    name: 'hd128 GQA 4, ragged contexts, prefix hits',
    seqs: [
      { qLen: 1, ctxLen: 333 },
      { qLen: 40, ctxLen: 77 },
      { qLen: 1, ctxLen: 17 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
  },
  {
    name: 'hd128 GQA 12 (query rows past 8 in the mma tile)',
    seqs: [
      { qLen: 1, ctxLen: 150 },
      { qLen: 9, ctxLen: 61 },
    ],
    numHeads: 24,
    numKvHeads: 2,
    headDim: 128,
  },
  {
    name: 'hd256 GQA 2, soft-cap 0.5, sliding window 40',
    seqs: [
      { qLen: 30, ctxLen: 130 },
      { qLen: 1, ctxLen: 77 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 256,
    slidingWindow: 40,
    softcap: 0.5,
  },
  {
    name: 'hd80 GQA 4 (ragged tile loads; fp8 only: q8_0 heads of 80 go to the simple kernel)',
    seqs: [
      { qLen: 1, ctxLen: 200 },
      { qLen: 33, ctxLen: 90 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 80,
    only: 'fp8',
  },
  {
    name: 'hd96 MHA (Phi-3; fp8 only: q8_0 heads of 96 go to the simple kernel)',
    seqs: [
      { qLen: 1, ctxLen: 180 },
      { qLen: 17, ctxLen: 70 },
    ],
    numHeads: 4,
    numKvHeads: 4,
    headDim: 96,
    only: 'fp8',
  },
  {
    name: 'hd64 GQA 8, long context',
    seqs: [
      { qLen: 1, ctxLen: 1000 },
      { qLen: 20, ctxLen: 520 },
    ],
    numHeads: 16,
    numKvHeads: 2,
    headDim: 64,
  },
];

/**
 * The problem's cache quantized by the CPU twin, and the problem over what it decodes to (the reference's input).
 * `tiles16`: as the tensor-core kernels' float16 tiles hold it. An fp8 value is exact there (the scale is applied to
 * fp32 scores and outputs), but a q8_0 value, int8 x its half scale, is rounded to float16; the simple kernel reads
 * every value exactly.
 */
function quantized(p: PagedAttentionProblem, quant: CudaKvQuant, scales: { k: number; v: number }, tiles16: boolean) {
  const row = p.numKvHeads * p.headDim;
  const slots = p.numBlocks * p.blockSize;
  const k = cpuPlanes(quant, p.kCache, slots, row, scales.k);
  const v = cpuPlanes(quant, p.vCache, slots, row, scales.v);
  const { toBits, fromBits } = STORAGE16.f16;
  const asRead = (x: Float32Array) => (tiles16 && quant === 'q8_0' ? x.map((y) => fromBits(toBits(y))) : x);
  const kCache = asRead(decode(quant, k, scales.k));
  const vCache = asRead(decode(quant, v, scales.v));
  const logical = (cache: Float32Array, si: number) => {
    const out = new Float32Array(p.seqs[si]!.ctxLen * row);
    for (let t = 0; t < p.seqs[si]!.ctxLen; t++) {
      const slot =
        p.blockTables[si * p.maxBlocksPerSeq + Math.floor(t / p.blockSize)]! * p.blockSize + (t % p.blockSize);
      out.set(cache.subarray(slot * row, (slot + 1) * row), t * row);
    }
    return out;
  };
  const dequantized: PagedAttentionProblem = {
    ...p,
    kCache,
    vCache,
    logicalK: p.seqs.map((_, si) => logical(kCache, si)),
    logicalV: p.seqs.map((_, si) => logical(vCache, si)),
  };
  return { k, v, dequantized };
}

// Against a float64 reference over the dequantized cache, the error is the 16-bit rounding of the dequantized K/V
// tiles, of P and of O: the bf16 cache's tolerances of attention-kernels.test.ts.
const O_TOL = 1e-2;
const LSE_TOL = 2e-3;

for (const quant of QUANTS) {
  for (const c of CASES.filter((c) => (c.only ?? quant) === quant)) {
    test(`${quant} cache: paged decode and paged-context prefill match float64 over the dequantized cache, ${c.name}`, {
      skip: gpu.skip,
    }, () => {
      const h = gpu.drv!;
      const scales = quant === 'fp8' ? { k: 0.5, v: 0.25 } : { k: 1, v: 1 };
      const p = makePagedProblem({ ...c, blockSize: 16, seed: 18 + c.headDim, qRange: 2 });
      const { k, v, dequantized } = quantized(p, quant, scales, true);
      const ref = referencePagedAttention(dequantized);
      const flash = new FlashAttention(gpu.rt!, 'bf16');
      const b = buffers(h);
      try {
        const totalQ = p.cuSeqlensQ[p.seqs.length]!;
        const qElems = totalQ * p.numHeads * p.headDim;
        const kvQuant: QuantKv = {
          type: quant,
          kScales: quant === 'q8_0' ? b.put(k.scales) : 0n,
          vScales: quant === 'q8_0' ? b.put(v.scales) : 0n,
          kScale: scales.k,
          vScale: scales.v,
        };
        const out = b.alloc(qElems * 2);
        const lse = b.alloc(totalQ * p.numHeads * 4);
        const args: PagedAttentionArgs = {
          q: b.put(toStorageArray(p.q, 'bf16')),
          qStride: p.numHeads * p.headDim,
          kCache: b.put(k.values),
          vCache: b.put(v.values),
          blockTables: b.put(p.blockTables),
          maxBlocksPerSeq: p.maxBlocksPerSeq,
          contextLens: b.put(p.contextLens),
          cuSeqlensQ: b.put(p.cuSeqlensQ),
          out,
          oStride: p.numHeads * p.headDim,
          lse,
          numSeqs: p.seqs.length,
          maxSeqlenQ: Math.max(...p.seqs.map((s) => s.qLen)),
          numHeads: p.numHeads,
          numKvHeads: p.numKvHeads,
          headDim: p.headDim,
          blockSize: 16,
          scale: p.scale,
          slidingWindow: p.slidingWindow,
          softcap: p.softcap,
          kvQuant,
        };
        const read = () => {
          h.sync();
          const bits = new Uint16Array(qElems);
          const l = new Float32Array(totalQ * p.numHeads);
          h.download(bits, out);
          h.download(l, lse);
          return { out: fromStorageArray(bits, 'bf16'), lse: l };
        };
        const poison = () => {
          h.fill32(out, 0x7fc07fc0, qElems / 2);
          h.fill32(lse, 0x7fc00000, totalQ * p.numHeads);
        };
        const check = (what: string, got: { out: Float32Array; lse: Float32Array }, want: typeof ref) => {
          const errO = relativeL2(got.out, want.out);
          const errLse = maxAbsDiff(got.lse, want.lse);
          assert.ok(errO <= O_TOL, `${what}: relative L2 error of O ${errO} > ${O_TOL}`);
          assert.ok(errLse <= LSE_TOL, `${what}: max LSE error ${errLse} > ${LSE_TOL}`);
        };
        poison();
        flash.prefill(args);
        check('prefill', read(), ref);
        // Decode: every sequence's last query token alone (the same keys).
        const lastRows = p.seqs.map((_, si) => p.cuSeqlensQ[si + 1]! - 1);
        const width = p.numHeads * p.headDim;
        const qDecode = new Float32Array(p.seqs.length * width);
        for (const [si, r] of lastRows.entries()) qDecode.set(p.q.subarray(r * width, (r + 1) * width), si * width);
        const ws = decodeWorkspaceBytes(p.seqs.length, p.numHeads, p.headDim);
        const workspace = { partialO: b.alloc(ws.partialO), partialLse: b.alloc(ws.partialLse), maxSplits: 32 };
        // The launcher's tiles (32-key, two deep, below head size 256), and at head sizes 64 and 128, whose quantized
        // caches took 16-key tiles before, those three deep.
        const narrow = new FlashAttention(gpu.rt!, 'bf16', { decode: DEFAULT_DECODE });
        const configs = [flash, ...(p.headDim === 64 || p.headDim === 128 ? [narrow] : [])];
        for (const [fa, splits] of configs.flatMap((fa) => [1, 3].map((n) => [fa, n] as const))) {
          const tiles = fa === flash ? 'default tiles' : '16-key tiles';
          poison();
          fa.decode(
            { ...args, q: b.put(toStorageArray(qDecode, 'bf16')), numSeqs: p.seqs.length, maxSeqlenQ: 1 },
            workspace,
            splits,
          );
          const got = read();
          const pick = (a: ArrayLike<number>, n: number) =>
            Float64Array.from({ length: p.seqs.length * n }, (_, i) => a[lastRows[Math.floor(i / n)]! * n + (i % n)]!);
          const decodeRef = { out: pick(ref.out, width), lse: pick(ref.lse, p.numHeads) };
          check(
            `decode, ${tiles}, ${splits} split(s)`,
            { out: got.out.subarray(0, p.seqs.length * width), lse: got.lse.subarray(0, p.seqs.length * p.numHeads) },
            decodeRef,
          );
        }
      } finally {
        b.free();
      }
    });
  }
}

/** Writes the problem's whole cache (every slot) through `backend.writeKv` with slots 0..N-1. */
function fillCache(backend: Backend, p: PagedAttentionProblem, cache: LayerKvCache): void {
  const slots = p.numBlocks * p.blockSize;
  const row = p.numKvHeads * p.headDim;
  const batch: StepBatch = {
    ...problemBatch(p, []),
    inputIds: new Int32Array(slots),
    positions: new Int32Array(slots),
    slotMapping: Int32Array.from({ length: slots }, (_, i) => i),
    cuSeqlensQ: Int32Array.from([0, slots]),
    contextLens: Int32Array.from([slots]),
    numSeqs: 1,
    maxSeqlenQ: slots,
  };
  const step = backend.beginStep(batch);
  const k = backend.loadWeight(hostTensor('k', [slots, row], p.kCache));
  const v = backend.loadWeight(hostTensor('v', [slots, row], p.vCache));
  backend.writeKv(k, v, cache, step);
}

/** A CUDA layer's stored planes, read back: values bytes and (q8_0) half scales. */
function storedPlanes(g: CudaBackend, cache: LayerKvCache, side: 'k' | 'v') {
  const kv = kvOf(cache);
  const [blocks, blockSize, Hk, D] = kv.shape;
  const values = new Uint8Array(blocks * blockSize * Hk * D);
  g.ctx.drv.download(values, side === 'k' ? kv.kPtr : kv.vPtr);
  const scales = new Uint16Array(kv.quant?.type === 'q8_0' ? values.length / 32 : 0);
  if (scales.length) g.ctx.drv.download(scales, side === 'k' ? kv.quant!.kScales : kv.quant!.vScales);
  return { values, scales };
}

/** The CPU cache's plane as the CUDA layout stores it. */
function cpuStored(quant: CudaKvQuant, cache: LayerKvCache, side: 'k' | 'v', slots: number, row: number) {
  const bytes = pagedOf(cache)[side].data as Uint8Array;
  return quant === 'fp8' ? { values: bytes, scales: new Uint16Array(0) } : q8PlanesOf(bytes, slots, row);
}

// Head size 64: the flash prefill; 32: the simple kernel (q8_0's blocks are whole heads in both, as SnapKV needs).
for (const quant of QUANTS) {
  for (const headDim of [64, 32]) {
    test(`a ${quant} cache through the backend (head_dim ${headDim}): stored bytes, attention, SnapKV scores, compaction and block copies match the CPU twin`, {
      skip: gpu.skip,
    }, () => {
      const g = new CudaBackend({ dtype: 'bf16', graphs: false });
      const cpu = new CpuBackend({ threads: 1 });
      const p = makePagedProblem({
        seqs: [
          { qLen: 48, ctxLen: 300 },
          { qLen: 1, ctxLen: 40 },
          { qLen: 70, ctxLen: 70 },
        ],
        numHeads: 8,
        numKvHeads: 2,
        headDim,
        blockSize: 16,
        seed: 7 + headDim,
        qRange: 2,
      });
      const scales = quant === 'fp8' ? [{ k: 0.5, v: 0.25 }] : undefined;
      const kvSpec = { numLayers: 1, numBlocks: p.numBlocks, blockSize: 16, numKvHeads: 2, headDim, quant, scales };
      const cache = g.allocKvCache(kvSpec)[0]!;
      const ccache = cpu.allocKvCache(kvSpec)[0]!;
      fillCache(g, p, cache);
      fillCache(cpu, p, ccache);
      const slots = p.numBlocks * 16;
      const row = 2 * headDim;
      const same = (what: string) => {
        for (const side of ['k', 'v'] as const) {
          const got = storedPlanes(g, cache, side);
          const want = cpuStored(quant, ccache, side, slots, row);
          assert.deepEqual(got.values, new Uint8Array(want.values), `${what}: ${side} values`);
          assert.deepEqual(got.scales, new Uint16Array(want.scales), `${what}: ${side} scales`);
        }
      };
      same('written');

      // Attention and SnapKV's scores against float64 over what the stored bytes decode to.
      // Head size 64 reads through the tensor-core tiles, 32 through the simple kernel.
      const { dequantized } = quantized(p, quant, scales?.[0] ?? { k: 1, v: 1 }, headDim === 64);
      const plans: KvCompressionPlan[] = [
        { seq: 0, window: 32, budget: 100 },
        { seq: 2, window: 20, budget: 40 },
      ];
      const spec: AttentionSpec = { numHeads: 8, numKvHeads: 2, headDim, scale: p.scale, slidingWindow: 0 };
      const step = g.beginStep(problemBatch(p, plans));
      const q = g.loadWeight(hostTensor('q', [p.q.length / (8 * headDim), 8 * headDim], p.q));
      const { out, lse } = g.attentionWithLse(q, cache, spec, step);
      const ref = referencePagedAttention(dequantized);
      const errO = relativeL2(g.toHost(out), ref.out);
      assert.ok(errO <= O_TOL, `O relative L2 ${errO}`);
      assert.ok(maxAbsDiff(g.toHost(lse), ref.lse) <= LSE_TOL, 'LSE');
      const scores = g.toHost(g.kvKeyScores(q, lse, cache, spec, step));
      const want = Float64Array.from(referenceSnapKvScores(dequantized, plans).flatMap((w) => [...w]));
      assert.ok(relL2(scores, want) < 5e-3, `SnapKV scores relative L2 ${relL2(scores, want)}`);

      // Compaction and copy-on-write move stored bytes (and q8_0 scales) only: the same bytes as the CPU's.
      const keep = selectKeys(Float32Array.from(want), plans, p.contextLens, 2);
      g.compactKv(cache, keep, step);
      cpu.compactKv(ccache, keep, cpu.beginStep(problemBatch(p, plans)));
      same('compacted');
      const src = Int32Array.from([0, 3, 5]);
      const dst = Int32Array.from([p.numBlocks - 1, 1, 2]);
      g.copyKvBlocks([cache], src, dst);
      cpu.copyKvBlocks([ccache], src, dst);
      same('block copies');
      g.releaseKvCaches();
    });
  }
}
