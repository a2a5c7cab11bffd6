import { isQuantType } from '../../primitives/ggml-types.ts';
import { type HostTensor, toFloat32 } from '../../primitives/host-tensor.ts';
import { hostByteLength } from '../../primitives/lazy-tensor.ts';
import { codecOf } from '../../primitives/quant/index.ts';
import { randomBlockPool } from '../../primitives/quant/random.ts';
import { groupBlockBytes, quantStackGroups } from '../../primitives/quant/stack.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { QTYPE, QUANT_RANDOM_BLOCKS } from './quant-kernels.ts';
import { type QuantCudaPart, QuantCudaTensor } from './quant-tensor.ts';
import type { WeightUploader } from './weight-upload.ts';

/**
 * Whether a weight stays in blocks on the device: a quantized 2-D matrix, or experts' matrices stacked `[E, R, cols]`
 * (a GGUF's `ffn_*_exps`, kept as `[E · R, cols]`: stack.ts `asRowMatrix`), loaded as stored. A quantized 1-D (norm)
 * or transposed weight is dequantized to the compute dtype at load instead, as the CPU backend turns them into float.
 */
export function keepsBlocks(w: HostTensor, transpose: boolean): boolean {
  return isQuantType(w.dtype) && (w.shape.length === 2 || w.shape.length === 3) && !transpose;
}

/**
 * A weight in blocks or codes that the backend does not keep so, dequantized on the host as the CPU backend keeps it
 * (the staging ring converts and transposes it on the way up): a quantized 1-D or transposed one, an expert stack of
 * several block types, or an FP8 checkpoint's `f8_e4m3` matrix that is not stored as FP8 (a side off the multiples of 16, a card
 * without FP8) through its row scales. Null for any other weight.
 */
export function dequantizedOnHost(w: HostTensor): HostTensor | null {
  if (!(isQuantType(w.dtype) || w.dtype === 'f8_e4m3') || hostByteLength(w) === 0) return null;
  return { name: w.name, shape: w.shape, dtype: 'f32', bytes: new Uint8Array(toFloat32(w).buffer) };
}

/**
 * Stacks 2-D quantized host tensors into one QuantCudaTensor in the weight slab: one part per run of a type
 * (quantStackGroups), each part's blocks queued on the backend's staging ring as stored (read from the file into
 * pinned memory, copied asynchronously), or for a dummy tensor (no bytes) made on the device.
 */
export function loadQuantized(
  ctx: CudaContext,
  hosts: readonly HostTensor[],
  seed: () => number,
  uploader: Pick<WeightUploader, 'uploadStored'>,
): QuantCudaTensor {
  const parts = quantStackGroups(hosts).map((g): QuantCudaPart => {
    const ptr = ctx.weights.alloc(g.rows * g.rowBytes);
    let at = ptr;
    for (const h of g.hosts) {
      const rows = h.shape[0]!;
      if (hostByteLength(h) === 0) randomBlocksOnDevice(ctx, h, at, rows * g.rowBytes, seed());
      else uploader.uploadStored(h, at, groupBlockBytes(h, g));
      at += BigInt(rows * g.rowBytes);
    }
    return { type: g.type, rows: g.rows, ptr, rowBytes: g.rowBytes };
  });
  return new QuantCudaTensor([parts.reduce((a, p) => a + p.rows, 0), hosts[0]!.shape[1]!], ctx.dtype, parts);
}

/**
 * --load-format dummy: `bytes` of random blocks of `h`'s type at `dst`, made on the device (an 8B model's Q4_K_M
 * blocks take the host ~50 s): primitives/quant/random.ts's recipe, scales from a small pool of valid blocks quantized
 * on the host, levels random.
 */
function randomBlocksOnDevice(ctx: CudaContext, h: HostTensor, dst: DevPtr, bytes: number, seed: number): void {
  if (!isQuantType(h.dtype)) throw new Error(`${h.name}: ${h.dtype} is not a quantized type`);
  const c = codecOf(h.dtype);
  const pool = randomBlockPool(h.dtype, 1 / Math.sqrt(h.shape[1]!), seed);
  const poolPtr = ctx.drv.alloc(pool.byteLength);
  try {
    ctx.drv.upload(poolPtr, pool);
    ctx.kernel(QUANT_RANDOM_BLOCKS, { QTYPE: QTYPE[h.dtype] }).launch(ctx.grid1d(bytes), [256], {
      out: dst,
      pool: poolPtr,
      blocks: bytes / c.blockBytes,
      poolBlocks: pool.byteLength / c.blockBytes,
      levelStart: c.levelBytes[0],
      levelEnd: c.levelBytes[1],
      seed,
    });
    ctx.drv.sync();
  } finally {
    ctx.drv.free(poolPtr);
  }
}
