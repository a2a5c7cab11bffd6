import { SNAPKV } from '../../primitives/kv-compression.ts';
import type { AttentionSpec, LayerKvCache, StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { kvOf } from './kv-cache.ts';
import { kvQuantDefines } from './kv-layout.ts';
import { cuda, DTYPE_BYTES } from './tensor.ts';

/** kernels/kv_compression.cu: SnapKV's raw key scores, a thread per (plan, KV head, key). */
export const SNAPKV_SCORES = declareKernel('kv_compression', 'snapkv_scores', {
  raw: 'ptr',
  q: 'ptr',
  lse: 'ptr',
  kCache: 'ptr',
  plans: 'ptr',
  cuSeqlensQ: 'ptr',
  contextLens: 'ptr',
  blockTables: 'ptr',
  maxBlocks: 'i32',
  blockSize: 'i32',
  numQHeads: 'i32',
  numKvHeads: 'i32',
  headDim: 'i32',
  scale: 'f32',
  slidingWindow: 'i32',
  kScales: 'ptr',
  kScale: 'f32',
});

/** The scores max-pooled over SNAPKV.poolKernel neighbours (built with POOL). */
export const SNAPKV_POOL = declareKernel('kv_compression', 'snapkv_pool', {
  out: 'ptr',
  raw: 'ptr',
  plans: 'ptr',
  contextLens: 'ptr',
});

/** Compaction's two halves: kept rows to scratch, then scratch to the first entries (built with SCATTER 0 / 1). */
export const KV_MOVE = declareKernel('kv_compression', 'kv_move', {
  kCache: 'ptr',
  vCache: 'ptr',
  scratch: 'ptr',
  keep: 'ptr',
  plans: 'ptr',
  blockTables: 'ptr',
  maxBlocks: 'i32',
  blockSize: 'i32',
  numKvHeads: 'i32',
  headDim: 'i32',
  kScales: 'ptr',
  vScales: 'ptr',
  scaleScratch: 'ptr',
});

const THREADS = 128;

/** Uploads small int32 metadata into the step arena; waits, so the host array may go at once. */
function upload(ctx: CudaContext, data: Int32Array): DevPtr {
  const p = ctx.arena.alloc(data.byteLength);
  ctx.drv.upload(p, data);
  ctx.drv.sync();
  return p;
}

/** `Backend.kvKeyScores` on the device: raw scores, then pooled, per plan `[Hk, keys]` f32. */
export function keyScores(
  ctx: CudaContext,
  q: Tensor,
  lse: Tensor,
  cache: LayerKvCache,
  spec: AttentionSpec,
  step: StepContext,
): Tensor {
  const s = stepOf(step);
  const b = s.batch;
  const plans = b.kvCompression ?? [];
  const Hk = spec.numKvHeads;
  const meta = new Int32Array(4 * plans.length);
  let total = 0;
  let maxKeys = 1;
  plans.forEach((p, i) => {
    const keys = b.contextLens[p.seq]! - p.window;
    meta.set([p.seq, p.window, p.budget, total], 4 * i);
    total += Hk * keys;
    maxKeys = Math.max(maxKeys, keys);
  });
  const raw = ctx.empty([total], 'f32');
  const out = ctx.empty([total], 'f32');
  if (plans.length === 0) return out;
  const metaPtr = upload(ctx, meta);
  const grid: [number, number, number] = [Math.ceil(maxKeys / THREADS), Hk, plans.length];
  const kv = kvOf(cache);
  ctx.kernel(SNAPKV_SCORES, kvQuantDefines(kv.quant?.type)).launch(grid, [THREADS], {
    raw: raw.ptr,
    q: ctx.own(q).ptr,
    lse: cuda(lse).ptr,
    kCache: kv.kPtr,
    plans: metaPtr,
    cuSeqlensQ: s.cuSeqlensQ,
    contextLens: s.contextLens,
    blockTables: s.blockTables,
    maxBlocks: s.tableWidth,
    blockSize: b.blockSize,
    numQHeads: spec.numHeads,
    numKvHeads: Hk,
    headDim: spec.headDim,
    scale: spec.scale,
    slidingWindow: spec.slidingWindow,
    kScales: kv.quant?.kScales ?? 0n,
    kScale: kv.quant?.kScale ?? 1,
  });
  ctx.kernel(SNAPKV_POOL, { POOL: SNAPKV.poolKernel }).launch(grid, [THREADS], {
    out: out.ptr,
    raw: raw.ptr,
    plans: metaPtr,
    contextLens: s.contextLens,
  });
  return out;
}

/** `Backend.compactKv` on the device: the kept rows through a scratch buffer (in place, the moves would race). */
export function compact(ctx: CudaContext, cache: LayerKvCache, keep: Int32Array, step: StepContext): void {
  const s = stepOf(step);
  const plans = s.batch.kvCompression ?? [];
  if (plans.length === 0) return;
  const kv = kvOf(cache);
  const [, , Hk, D] = kv.shape;
  const meta = new Int32Array(4 * plans.length);
  let kept = 0;
  let maxBudget = 1;
  plans.forEach((p, i) => {
    meta.set([p.seq, p.budget, kept, kept], 4 * i);
    kept += Hk * p.budget;
    maxBudget = Math.max(maxBudget, p.budget);
  });
  if (keep.length !== kept) throw new Error(`compactKv: ${keep.length} kept entries, the plans need ${kept}`);
  // Scratch rows hold a head's K and V as stored (one byte a value when quantized), and for q8_0 its scales.
  const quant = kv.quant;
  const scratch = ctx.arena.alloc(kept * 2 * D * (quant ? 1 : DTYPE_BYTES[ctx.dtype]));
  const scaleScratch = quant?.type === 'q8_0' ? ctx.arena.alloc(kept * 2 * (D / 32) * 2) : 0n;
  const args = {
    kCache: kv.kPtr,
    vCache: kv.vPtr,
    scratch,
    keep: upload(ctx, keep),
    plans: upload(ctx, meta),
    blockTables: s.blockTables,
    maxBlocks: s.tableWidth,
    blockSize: s.batch.blockSize,
    numKvHeads: Hk,
    headDim: D,
    kScales: quant?.kScales ?? 0n,
    vScales: quant?.vScales ?? 0n,
    scaleScratch,
  };
  const threads: [number] = [Math.min(D, 256)];
  for (const scatter of [0, 1]) {
    ctx
      .kernel(KV_MOVE, { SCATTER: scatter, ...kvQuantDefines(kv.quant?.type) })
      .launch([maxBudget, Hk, plans.length], threads, args);
  }
}
