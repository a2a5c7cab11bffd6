import type {
  AttentionSpec,
  DType,
  HostTensor,
  LayerKvCache,
  RopeSpec,
  StepContext,
  Tensor,
} from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import type { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { decodeFrom, encodeAs } from '../../src/backend/cuda/tensor.ts';
import { toFloat32 } from '../../src/loader/safetensors.ts';

/**
 * The CPU backend with the CUDA backend's storage precision: weights and every op's output rounded to bf16 or fp16
 * (the residual stream stays float, as on the device). It tells how far from the float32 golden logits a faithful
 * low-precision forward lands, which on the tiny random-weight fixtures is itself more than 2 %.
 */
export class LowPrecisionCpu extends CpuBackend {
  constructor(private readonly dtype: Exclude<DType, 'f32'>) {
    super();
  }

  private round<T extends Tensor>(t: T): T {
    const c = t as unknown as CpuTensor;
    c.data.set(decodeFrom(encodeAs(c.data, this.dtype), this.dtype));
    return t;
  }

  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    return super.loadWeight({ ...w, dtype: this.dtype, bytes: encodeAs(toFloat32(w), this.dtype) }, opts);
  }
  override embedding(table: Tensor, step: StepContext, index: 'tokens' | 'positions'): Tensor {
    return this.round(super.embedding(table, step, index));
  }
  override linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
    return this.round(super.linear(x, w, b));
  }
  override rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
    return this.round(super.rmsNorm(x, w, eps));
  }
  override addRmsNorm(x: Tensor, residual: Tensor, w: Tensor, eps: number): { out: Tensor; residual: Tensor } {
    const o = super.addRmsNorm(x, residual, w, eps);
    return { out: this.round(o.out), residual: o.residual };
  }
  override layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
    return this.round(super.layerNorm(x, w, b, eps));
  }
  override add(a: Tensor, b: Tensor): Tensor {
    return this.round(super.add(a, b));
  }
  override rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext): void {
    super.rope(q, k, headDim, rope, step);
    this.round(q);
    this.round(k);
  }
  override siluMul(x: Tensor): Tensor {
    return this.round(super.siluMul(x));
  }
  override gelu(x: Tensor, approximate: 'tanh' | 'none'): Tensor {
    return this.round(super.gelu(x, approximate));
  }
  override attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    return this.round(super.attention(q, cache, spec, step));
  }
}
