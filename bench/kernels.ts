/**
 * Attention kernel throughput on the GPU: flash_prefill (TFLOP/s, causal; on a Hopper card also the sm_90a kernel,
 * flash_prefill_sm90a, on the 16-bit cache, in every build of sm90aPrefillSweep, each build's output checked against
 * the launcher default's) and paged_decode (GB/s of K/V read from the
 * paged cache), on the shapes of the project's baselines at head size 128 (with --head-dims, at other sizes too, the
 * head counts scaled to keep the model width, so FLOPs and bytes match across sizes). PyTorch SDPA (FLASH, CUDNN) runs from
 * bench/sdpa_baseline.py in the same device call. Each kernel runs in every tile shape of the sweep below; the first is
 * the launcher's default, in each storage type of --dtype (default both, bf16 then fp16: the same shapes and values
 * range). Usage: node --import tsx bench/kernels.ts [--dtype bf16,f16] [--head-dims 128,256] [--kv-cache-type fp8,q8_0]
 * [--json out.json] [--profile] (--profile: only the default kernels on the first prefill and decode shapes, a few calls
 * each, for ncu) [--decode-only] [--decode-configs 4:32:2,4:16:3] (paged_decode's builds at head size 128 as
 * warps:tileN:stages, the first the one the other rows compare with; default the launcher's and 4:32:2).
 * --kv-cache-type: each shape also over quantized caches (random stored bytes), and the decode tokens/s and prefill
 * time of each against the 16-bit cache's.
 */
import { writeFileSync } from 'node:fs';
import {
  type AttentionDtype,
  type DecodeWorkspace,
  FlashAttention,
  type PagedAttentionArgs,
} from '../src/backend/cuda/flash-attention.ts';
import {
  DEFAULT_DECODE,
  DEFAULT_PREFILL,
  type DecodeConfig,
  decodeWorkspaceBytes,
  defaultConfigs,
  type PrefillConfig,
  sm90aConfigName,
  sm90aPrefillConfig,
  sm90aPrefillSweep,
} from '../src/backend/cuda/flash-sizing.ts';
import type { QuantKv } from '../src/backend/cuda/kv-cache.ts';
import { type CudaKvQuant, isCudaKvQuant } from '../src/backend/cuda/kv-layout.ts';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { mulberry32 } from '../src/util/random.ts';
import { openCudaAttention } from '../test/helpers/cuda-attention.ts';
import { fromStorageArray, relativeL2, STORAGE16 } from '../test/helpers/paged-attention-reference.ts';

const gpu = openCudaAttention();
if (gpu.skip) throw new Error(gpu.skip);
const h = gpu.drv!;
const rt = gpu.rt!;
const BLOCK_SIZE = 16;
const profile = process.argv.includes('--profile');
const dtypeAt = process.argv.indexOf('--dtype');
const dtypes = (dtypeAt > 0 ? process.argv[dtypeAt + 1]! : 'bf16,f16').split(',') as AttentionDtype[];
for (const d of dtypes) if (!(d in STORAGE16)) throw new Error(`--dtype ${d}: expected bf16 and/or f16`);
const headDimsAt = process.argv.indexOf('--head-dims');
const headDims = (headDimsAt > 0 ? process.argv[headDimsAt + 1]! : '128').split(',').map(Number);
for (const d of headDims) if (![64, 128, 256].includes(d)) throw new Error(`--head-dims ${d}: expected 64, 128 or 256`);
const kvTypesAt = process.argv.indexOf('--kv-cache-type');
const kvQuants = (kvTypesAt > 0 ? process.argv[kvTypesAt + 1]!.split(',') : []) as CudaKvQuant[];
for (const q of kvQuants) if (!isCudaKvQuant(q)) throw new Error(`--kv-cache-type ${q}: expected fp8 and/or q8_0`);
/** The caches each shape runs over: the 16-bit one, then the quantized ones asked for. */
const caches: (CudaKvQuant | undefined)[] = [undefined, ...kvQuants];
const cacheName = (q: CudaKvQuant | undefined) => (q ? `, ${q} cache` : '');
const prefillConfigs: PrefillConfig[] = profile
  ? [DEFAULT_PREFILL]
  : [DEFAULT_PREFILL, { warps: 8, mTiles: 1, blockN: 128 }, { warps: 8, mTiles: 1, blockN: 64 }];
const decodeConfigsAt = process.argv.indexOf('--decode-configs');
const decodeConfigs: DecodeConfig[] = profile
  ? [DEFAULT_DECODE]
  : decodeConfigsAt > 0
    ? process.argv[decodeConfigsAt + 1]!.split(',').map((c) => {
        const [warps, tileN, stages] = c.split(':').map(Number);
        return { warps: warps!, tileN: tileN!, stages: stages! };
      })
    : [DEFAULT_DECODE, { warps: 4, tileN: 32, stages: 2 }];
const decodeOnly = process.argv.includes('--decode-only');
const shape = (c: object) => JSON.stringify(c).replace(/["{}]/g, '');
/**
 * How far (relative L2) a swept sm_90a build's O may be from the default build's: the same sums in another order
 * (other tile widths round P and rescale O at other points), each within bf16's O bound of the float64 reference
 * in the GPU tests; a wrong build (a missed tile, a race on the ring) is off by far more.
 */
const SM90A_AGREE = 1e-2;

/** Fills `bytes` of device memory with random `dtype` values in [-1, 1) by tiling one 32 MiB random host buffer. */
const tiles = new Map<AttentionDtype, Uint16Array>();
function randomDevice(bytes: number, dtype: AttentionDtype): bigint {
  let tile = tiles.get(dtype);
  if (!tile) {
    const r = mulberry32(7);
    tile = new Uint16Array(16 << 20).map(() => STORAGE16[dtype].toBits(r() * 2 - 1));
    tiles.set(dtype, tile);
  }
  const p = h.alloc(bytes);
  for (let off = 0; off < bytes; off += tile.byteLength) {
    const n = Math.min(tile.byteLength, bytes - off);
    h.upload(p + BigInt(off), new Uint16Array(tile.buffer, 0, n / 2));
  }
  return p;
}

/**
 * `bytes` of random quantized cache: fp8 bytes (no NaN codes; the layer scale makes them about [-1, 1]) or q8_0
 * int8s, whose half scales (1/127) are `scales`.
 */
function randomQuantDevice(bytes: number, quant: CudaKvQuant): bigint {
  const r = mulberry32(5);
  const tile = new Uint8Array(Math.min(bytes, 32 << 20)).map(() => {
    const b = Math.floor(r() * 256);
    return quant === 'fp8' && (b & 0x7f) === 0x7f ? b - 1 : b;
  });
  const p = h.alloc(bytes);
  for (let off = 0; off < bytes; off += tile.byteLength) {
    h.upload(p + BigInt(off), tile.subarray(0, Math.min(tile.byteLength, bytes - off)));
  }
  return p;
}
const Q8_SCALE = 0x2008; // half 1/127

/** A quantized cache's scales: q8_0's planes (one half per 32 values) or fp8's layer scales. */
function quantKv(quant: CudaKvQuant, values: number): QuantKv {
  if (quant === 'fp8') return { type: quant, kScales: 0n, vScales: 0n, kScale: 1 / 448, vScale: 1 / 448 };
  const planes = [0, 1].map(() => {
    const p = h.alloc((values / 32) * 2);
    h.fill32(p, Q8_SCALE * 0x10001, values / 64);
    return p;
  });
  return { type: quant, kScales: planes[0]!, vScales: planes[1]!, kScale: 1, vScale: 1 };
}

/** A paged problem of `numSeqs` sequences of `ctx` keys, the last `qLen` of them queries; blocks shuffled. */
function setup(
  dtype: AttentionDtype,
  numSeqs: number,
  qLen: number,
  ctx: number,
  numHeads: number,
  numKvHeads: number,
  headDim: number,
  quant?: CudaKvQuant,
) {
  const blocksPer = Math.ceil(ctx / BLOCK_SIZE);
  const numBlocks = numSeqs * blocksPer;
  const perm = Array.from({ length: numBlocks }, (_, i) => i);
  const r = mulberry32(11);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const put = (a: Int32Array) => {
    const p = h.alloc(a.byteLength);
    h.upload(p, a);
    return p;
  };
  const cacheValues = numBlocks * BLOCK_SIZE * numKvHeads * headDim;
  const cacheBytes = cacheValues * (quant ? 1 : 2);
  const cache = () => (quant ? randomQuantDevice(cacheBytes, quant) : randomDevice(cacheBytes, dtype));
  const totalQ = numSeqs * qLen;
  const args: PagedAttentionArgs = {
    q: randomDevice(totalQ * numHeads * headDim * 2, dtype),
    qStride: numHeads * headDim,
    kCache: cache(),
    vCache: cache(),
    blockTables: put(Int32Array.from(perm)),
    maxBlocksPerSeq: blocksPer,
    contextLens: put(new Int32Array(numSeqs).fill(ctx)),
    cuSeqlensQ: put(Int32Array.from({ length: numSeqs + 1 }, (_, i) => i * qLen)),
    out: h.alloc(totalQ * numHeads * headDim * 2),
    oStride: numHeads * headDim,
    lse: h.alloc(totalQ * numHeads * 4),
    numSeqs,
    maxSeqlenQ: qLen,
    numHeads,
    numKvHeads,
    headDim,
    blockSize: BLOCK_SIZE,
    scale: 1 / Math.sqrt(headDim),
    slidingWindow: 0,
    kvQuant: quant ? quantKv(quant, cacheValues) : null,
  };
  const free = () => {
    if (args.kvQuant?.kScales) for (const p of [args.kvQuant.kScales, args.kvQuant.vScales]) h.free(p);
    for (const p of [args.q, args.kCache, args.vCache, args.blockTables, args.contextLens, args.cuSeqlensQ]) h.free(p);
    h.free(args.out);
    h.free(args.lse);
  };
  return { args, free };
}

/** Median milliseconds per call over 7 rounds of `reps` calls, after a warm-up. */
function timeMs(body: () => void, reps: number): number {
  for (let i = 0; i < 3; i++) body();
  h.sync();
  if (profile) return Number.NaN;
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    rounds.push(
      streamMillis(h, () => {
        for (let i = 0; i < reps; i++) body();
      }) / reps,
    );
  }
  rounds.sort((a, b) => a - b);
  return rounds[3]!;
}

interface Row {
  kernel: string;
  shape: string;
  ms: number;
  figure: number;
  unit: string;
  note?: string;
}
const rows: Row[] = [];

for (const [batch, seqLen, dtype, D, quant] of (decodeOnly
  ? []
  : profile
    ? ([[4, 4096]] as const)
    : ([
        [4, 4096],
        [1, 16384],
      ] as const)
).flatMap(([b, s]) => dtypes.flatMap((d) => headDims.flatMap((hd) => caches.map((q) => [b, s, d, hd, q] as const))))) {
  const heads = (16 * 128) / D;
  const { args, free } = setup(dtype, batch, seqLen, seqLen, heads, heads, D, quant);
  const flops = (4 * batch * heads * seqLen * seqLen * D) / 2;
  // The sweep's other shapes are head size 128's; other sizes run their own default.
  const shapeName = `causal hd${D} B${batch} S${seqLen} H${heads} (paged, bs ${BLOCK_SIZE})`;
  for (const cfg of D === 128 ? prefillConfigs : [defaultConfigs(D).prefill]) {
    const fa = new FlashAttention(rt, dtype, { prefill: cfg, prefillKernel: 'mma' });
    const ms = timeMs(() => fa.prefill(args), 5);
    rows.push({
      kernel: `pagoda flash_prefill ${dtype}${cacheName(quant)}`,
      shape: shapeName,
      ms,
      figure: flops / (ms / 1e3) / 1e12,
      unit: 'TFLOP/s',
      note: shape(cfg),
    });
  }
  // The sm_90a kernel beside it, where it covers the shape (Hopper, 16-bit cache): every swept build, the launcher's
  // default first, each build's output checked against the default's.
  if (new FlashAttention(rt, dtype, { prefillKernel: 'wgmma' }).prefillKernelFor(args) === 'wgmma') {
    const outElems = batch * seqLen * heads * D;
    const readOut = () => {
      const bits = new Uint16Array(outElems);
      h.sync();
      h.download(bits, args.out);
      return fromStorageArray(bits, dtype);
    };
    let want: Float32Array | undefined;
    for (const cfg of profile ? [sm90aPrefillConfig(D)] : sm90aPrefillSweep(D)) {
      const fa = new FlashAttention(rt, dtype, { prefillKernel: 'wgmma', sm90a: cfg });
      h.fill32(args.out, 0x7fc07fc0 /* NaN in bf16 and fp16 */, outElems / 2);
      fa.prefill(args);
      const got = readOut();
      want ??= got;
      const err = relativeL2(got, want);
      const ms = timeMs(() => fa.prefill(args), 5);
      rows.push({
        kernel: `pagoda flash_prefill_sm90a ${dtype}`,
        shape: shapeName,
        ms,
        figure: flops / (ms / 1e3) / 1e12,
        unit: 'TFLOP/s',
        note: `${sm90aConfigName(cfg)}${got === want ? ' (default)' : `, rel. L2 vs default ${err.toExponential(1)}${err <= SM90A_AGREE ? '' : ' MISMATCH'}`}`,
      });
    }
  }
  free();
}

for (const [batch, ctx, dtype, D, quant] of (profile
  ? ([[64, 4096]] as const)
  : ([
      [64, 4096],
      [256, 1024],
      [256, 512],
    ] as const)
).flatMap(([b, c]) => dtypes.flatMap((d) => headDims.flatMap((hd) => caches.map((q) => [b, c, d, hd, q] as const))))) {
  const [heads, kvHeads] = [(32 * 128) / D, (8 * 128) / D];
  const { args, free } = setup(dtype, batch, 1, ctx, heads, kvHeads, D, quant);
  const wsBytes = decodeWorkspaceBytes(batch, heads, D);
  const ws: DecodeWorkspace = {
    partialO: h.alloc(wsBytes.partialO),
    partialLse: h.alloc(wsBytes.partialLse),
    maxSplits: 32,
  };
  // Stored bytes read: K and V, plus q8_0's scales.
  const kvBytes = batch * ctx * kvHeads * D * 2 * (quant ? 1 + (quant === 'q8_0' ? 2 / 32 : 0) : 2);
  for (const cfg of D === 128 ? decodeConfigs : [defaultConfigs(D).decode]) {
    const fa = new FlashAttention(rt, dtype, { decode: cfg });
    const auto = fa.decodeSplitsFor(args);
    for (const splits of profile ? [auto] : [auto, 2 * auto]) {
      const ms = timeMs(() => fa.decode(args, ws, splits), 20);
      rows.push({
        kernel: `pagoda paged_decode ${dtype}${cacheName(quant)}`,
        shape: `GQA ${heads}/${kvHeads} hd${D} B${batch} ctx${ctx} (paged, bs ${BLOCK_SIZE})`,
        ms,
        figure: kvBytes / (ms / 1e3) / 1e9,
        unit: 'GB/s KV',
        note: `${shape(cfg)}, ${splits} split(s)${splits === auto ? ' (auto)' : ''}, ${(batch / (ms / 1e3)).toFixed(0)} tok/s`,
      });
    }
  }
  h.free(ws.partialO);
  h.free(ws.partialLse);
  free();
}

console.log(`device: ${h.info.name} (${h.info.smCount} SMs)`);
console.log('| kernel | shape | ms | figure | note |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.kernel} | ${r.shape} | ${r.ms.toFixed(3)} | ${r.figure.toFixed(0)} ${r.unit} | ${r.note ?? ''} |`);
// Each quantized cache against the 16-bit cache on the same shape, both in the default tile shape (and for decode the
// automatic split count): the first row of each (kernel, shape).
const firstRow = (kernel: string, shape: string) => rows.find((r) => r.kernel === kernel && r.shape === shape);
for (const q of kvQuants) {
  for (const r of rows.filter((r) => r.kernel.endsWith(cacheName(q)) && firstRow(r.kernel, r.shape) === r)) {
    const base = firstRow(r.kernel.slice(0, -cacheName(q).length), r.shape);
    if (base) console.log(`${r.kernel} ${r.shape}: ${(base.ms / r.ms).toFixed(2)}x the 16-bit cache's speed`);
  }
}
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ device: h.info.name, rows }, null, 2));
