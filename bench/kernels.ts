/**
 * Attention kernel throughput on the GPU: flash_prefill (TFLOP/s, causal) and paged_decode (GB/s of K/V read from the
 * paged cache), on the shapes of the project's baselines at head size 128 (with --head-dims, at other sizes too, the
 * head counts scaled to keep the model width, so FLOPs and bytes match across sizes). PyTorch SDPA (FLASH, CUDNN) runs from
 * bench/sdpa_baseline.py in the same device call. Each kernel runs in every tile shape of the sweep below; the first is
 * the launcher's default, in each storage type of --dtype (default both, bf16 then fp16: the same shapes and values
 * range). Usage: node --import tsx bench/kernels.ts [--dtype bf16,f16] [--head-dims 128,256] [--json out.json] [--profile]
 * (--profile: only the default kernels on the first prefill and decode shapes, a few calls each, for ncu).
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
} from '../src/backend/cuda/flash-sizing.ts';
import { mulberry32 } from '../src/util/random.ts';
import { openCudaAttention } from '../test/helpers/cuda-attention.ts';
import { STORAGE16 } from '../test/helpers/paged-attention-reference.ts';

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
const prefillConfigs: PrefillConfig[] = profile
  ? [DEFAULT_PREFILL]
  : [DEFAULT_PREFILL, { warps: 8, mTiles: 1, blockN: 128 }, { warps: 8, mTiles: 1, blockN: 64 }];
const decodeConfigs: DecodeConfig[] = profile ? [DEFAULT_DECODE] : [DEFAULT_DECODE, { warps: 4, tileN: 16, stages: 3 }];
const shape = (c: object) => JSON.stringify(c).replace(/["{}]/g, '');

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

/** A paged problem of `numSeqs` sequences of `ctx` keys, the last `qLen` of them queries; blocks shuffled. */
function setup(
  dtype: AttentionDtype,
  numSeqs: number,
  qLen: number,
  ctx: number,
  numHeads: number,
  numKvHeads: number,
  headDim: number,
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
  const cacheBytes = numBlocks * BLOCK_SIZE * numKvHeads * headDim * 2;
  const totalQ = numSeqs * qLen;
  const args: PagedAttentionArgs = {
    q: randomDevice(totalQ * numHeads * headDim * 2, dtype),
    qStride: numHeads * headDim,
    kCache: randomDevice(cacheBytes, dtype),
    vCache: randomDevice(cacheBytes, dtype),
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
  };
  const free = () => {
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
      h.time(() => {
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

for (const [batch, seqLen, dtype, D] of (profile
  ? ([[4, 4096]] as const)
  : ([
      [4, 4096],
      [1, 16384],
    ] as const)
).flatMap(([b, s]) => dtypes.flatMap((d) => headDims.map((hd) => [b, s, d, hd] as const)))) {
  const heads = (16 * 128) / D;
  const { args, free } = setup(dtype, batch, seqLen, seqLen, heads, heads, D);
  const flops = (4 * batch * heads * seqLen * seqLen * D) / 2;
  // The sweep's other shapes are head size 128's; other sizes run their own default.
  for (const cfg of D === 128 ? prefillConfigs : [defaultConfigs(D).prefill]) {
    const fa = new FlashAttention(rt, dtype, { prefill: cfg });
    const ms = timeMs(() => fa.prefill(args), 5);
    rows.push({
      kernel: `pagoda flash_prefill ${dtype}`,
      shape: `causal hd${D} B${batch} S${seqLen} H${heads} (paged, bs ${BLOCK_SIZE})`,
      ms,
      figure: flops / (ms / 1e3) / 1e12,
      unit: 'TFLOP/s',
      note: shape(cfg),
    });
  }
  free();
}

for (const [batch, ctx, dtype, D] of (profile
  ? ([[64, 4096]] as const)
  : ([
      [64, 4096],
      [256, 1024],
    ] as const)
).flatMap(([b, c]) => dtypes.flatMap((d) => headDims.map((hd) => [b, c, d, hd] as const)))) {
  const [heads, kvHeads] = [(32 * 128) / D, (8 * 128) / D];
  const { args, free } = setup(dtype, batch, 1, ctx, heads, kvHeads, D);
  const wsBytes = decodeWorkspaceBytes(batch, heads, D);
  const ws: DecodeWorkspace = {
    partialO: h.alloc(wsBytes.partialO),
    partialLse: h.alloc(wsBytes.partialLse),
    maxSplits: 32,
  };
  const kvBytes = batch * ctx * kvHeads * D * 2 * 2;
  for (const cfg of D === 128 ? decodeConfigs : [defaultConfigs(D).decode]) {
    const fa = new FlashAttention(rt, dtype, { decode: cfg });
    const auto = fa.decodeSplitsFor(args);
    for (const splits of profile ? [auto] : [auto, 2 * auto]) {
      const ms = timeMs(() => fa.decode(args, ws, splits), 20);
      rows.push({
        kernel: `pagoda paged_decode ${dtype}`,
        shape: `GQA ${heads}/${kvHeads} hd${D} B${batch} ctx${ctx} (paged, bs ${BLOCK_SIZE})`,
        ms,
        figure: kvBytes / (ms / 1e3) / 1e9,
        unit: 'GB/s KV',
        note: `${shape(cfg)}, ${splits} split(s)${splits === auto ? ' (auto)' : ''}`,
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
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ device: h.info.name, rows }, null, 2));
