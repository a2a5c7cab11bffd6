import { hostByteLength } from '../../primitives/lazy-tensor.ts';
import type { HostTensor, Tensor, WeightLoadOptions } from '../backend.ts';
import type { CudaContext } from './context.ts';
import * as elementwise from './elementwise.ts';
import { Fp8Staging, loadFp8Weight, storesFp8 } from './fp8.ts';
import { dequantizedOnHost, loadQuantized } from './quant-load.ts';
import type { QuantCudaTensor } from './quant-tensor.ts';
import type { CudaEvent } from './stream-event.ts';
import { CudaTensor, DTYPE_BYTES } from './tensor.ts';
import { launchConvert } from './weight-convert.ts';
import { type UploadStats, WeightUploader } from './weight-upload.ts';

/**
 * Puts weights in the weight slab as the backend keeps them: FP8 (codes and row scales), blocks as stored, or the
 * compute dtype; their bytes go up through the uploader's pinned ring, dummy weights (no bytes) are made on the device.
 */
export class CudaWeightLoader {
  private readonly uploader: WeightUploader;
  private readonly fp8Staging: Fp8Staging;
  private dummySeed = 1;
  /** Quantized weights dequantized at load (1-D, transposed, expert stacks of several types), in the start-up report. */
  dequantizedAtLoad = 0;

  constructor(
    private readonly ctx: CudaContext,
    events: () => CudaEvent,
    /** FP8 weights (compute capability 8.9+): see Backend.fp8Weights. */
    private readonly fp8Weights: boolean,
    progress?: (bytes: number) => void,
  ) {
    this.uploader = new WeightUploader(ctx.drv, events, (j) => launchConvert(ctx, j), { progress });
    this.fp8Staging = new Fp8Staging(ctx, this.uploader);
  }

  /** A weight not kept in blocks (quant-load.ts `keepsBlocks`; those go through `loadQuantized`). */
  load(w: HostTensor, opts?: WeightLoadOptions): Tensor {
    if (this.fp8Weights && storesFp8(w, opts)) return loadFp8Weight(this.ctx, this.fp8Staging, w, this.dummySeed++);
    const floats = dequantizedOnHost(w);
    if (floats) [w, this.dequantizedAtLoad] = [floats, this.dequantizedAtLoad + 1];
    const { dtype, weights } = this.ctx;
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    const n = shape.reduce((a, d) => a * d, 1);
    const ptr = weights.alloc(n * DTYPE_BYTES[dtype]);
    const out = new CudaTensor(shape, dtype, ptr);
    if (hostByteLength(w) === 0 && n > 0) {
      // --load-format dummy: no bytes on the host; fill on the device (norm weights and biases 1, matrices small).
      if (shape.length === 1) elementwise.fillConst(this.ctx, ptr, n, 1);
      else elementwise.fillUniform(this.ctx, ptr, n, this.dummySeed++, 1 / Math.sqrt(shape[shape.length - 1]!));
      return out;
    }
    this.uploader.upload(w, ptr, dtype, opts?.transpose === true);
    return out;
  }

  /** Quantized 2-D weights as stored, one part per type. */
  loadQuantized(parts: readonly HostTensor[]): QuantCudaTensor {
    return loadQuantized(this.ctx, parts, () => this.dummySeed++, this.uploader);
  }

  /** Frees the buffer 16-bit weights passed through on their way to FP8. */
  releaseFp8Staging(): void {
    this.fp8Staging.release();
  }

  /** Waits for the weights queued so far to be on the device and frees the staging ring; what was uploaded. */
  finish(): UploadStats {
    return this.uploader.finish();
  }
}
