import type { StepBatch } from '../../primitives/step-batch.ts';
import type { DType, StepContext, Tensor } from '../backend.ts';
import { CudaDriver, type DevPtr } from './driver.ts';
import type { ArgList, Kernel, KernelDecl } from './kernel.ts';
import { Arena, Slab } from './memory.ts';
import { type Defines, KernelModules } from './modules.ts';
import { Nvrtc } from './nvrtc.ts';
import { type OwningDriver, owningDriver } from './owning-driver.ts';
import { type CudaSettings, cudaSettings } from './settings.ts';
import { CudaStepContext, StepBuffers } from './step-buffers.ts';
import { CudaEvent } from './stream-event.ts';
import { CudaTensor, cuda, DTYPE_BYTES, DTYPE_DEFINE } from './tensor.ts';

export interface CudaContextOptions extends Partial<CudaSettings> {
  /** Storage and GEMM input type of weights, activations and KV cache. */
  dtype: DType;
  /** Bytes the weights will take (one allocation when known). */
  weightBytes?: number;
}

export function stepOf(step: StepContext): CudaStepContext {
  if (!(step instanceof CudaStepContext)) throw new Error('step context does not belong to the CUDA backend');
  return step;
}

/**
 * What every part of the CUDA backend works with: its settings, the driver, the kernels compiled for the storage
 * type, the weight slab, the per-step activation arena and the step's metadata on the device.
 */
export class CudaContext {
  readonly settings: CudaSettings;
  /** The process's driver, its allocations recorded for `release`. */
  readonly drv: OwningDriver;
  readonly mods: KernelModules;
  readonly dtype: DType;
  readonly weights: Slab;
  readonly arena: Arena;
  readonly steps: StepBuffers;
  private readonly kernels = new Map<string, Kernel>();

  constructor(opts: CudaContextOptions) {
    this.settings = cudaSettings(opts);
    this.drv = owningDriver(CudaDriver.open(this.settings));
    this.mods = new KernelModules(this.drv, Nvrtc.open(this.settings.cudaRoots), this.settings.kernelCache);
    this.dtype = opts.dtype;
    this.weights = new Slab(this.drv);
    // A little headroom for small per-model tables (RoPE inverse frequencies) after the weights.
    if (opts.weightBytes) this.weights.reserve(opts.weightBytes + (4 << 20));
    this.arena = new Arena(this.drv);
    this.steps = new StepBuffers(this.drv, () => new CudaEvent(this.drv));
  }

  /** The declared kernel compiled for this context's dtype and `defines` (memoized). */
  kernel<A extends ArgList>(decl: KernelDecl<A>, defines: Defines = {}): Kernel<A> {
    const key = `${decl.file}.${decl.name}${JSON.stringify(defines)}`;
    let k = this.kernels.get(key) as Kernel<A> | undefined;
    if (!k) {
      k = this.mods.get(decl, { PAGODA_DTYPE: DTYPE_DEFINE[this.dtype], ...defines });
      this.kernels.set(key, k);
    }
    return k;
  }

  /** A tensor of this context in its storage type (the float residual stream goes only to addRmsNorm and add). */
  own(t: Tensor): CudaTensor {
    const c = cuda(t);
    if (c.dtype !== this.dtype) throw new Error(`expected a ${this.dtype} tensor, got ${c.dtype} [${c.shape}]`);
    return c;
  }

  /** A new activation tensor from the step arena. */
  empty(shape: readonly number[], dtype: DType = this.dtype): CudaTensor {
    const n = shape.reduce((a, d) => a * d, 1);
    return new CudaTensor([...shape], dtype, this.arena.alloc(n * DTYPE_BYTES[dtype]));
  }

  /** Frees every device and pinned allocation of this context (its backend's model unloaded). */
  release(): void {
    this.drv.releaseAll();
  }

  /** Starts a step: the arena from its start, the step's metadata uploaded to its fixed buffers. */
  /**
   * Resets the arena and uploads a step's metadata; `inputs`: device-sampled ids (`DeviceSampledIds`) copied over the
   * batch's first `count` input ids, on the stream after the upload.
   */
  beginStep(batch: StepBatch, inputs?: { ptr: DevPtr; count: number }): CudaStepContext {
    this.arena.reset();
    const step = this.steps.upload(batch);
    if (inputs) this.drv.copy(step.ids, inputs.ptr, 4 * inputs.count);
    return step;
  }

  /** Blocks of 256 threads for a grid-stride loop over `n` elements (at most 16 per SM). */
  grid1d(n: number): [number] {
    return [Math.max(1, Math.min(Math.ceil(n / 256), this.drv.info.smCount * 16))];
  }

  /** Threads of a one-block-per-row kernel: 8 columns each, whole warps, 32 to 1024. */
  rowThreads(cols: number): [number] {
    return [Math.min(1024, Math.max(32, Math.ceil(cols / 8 / 32) * 32))];
  }
}
