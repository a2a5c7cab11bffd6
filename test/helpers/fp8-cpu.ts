import assert from 'node:assert/strict';
import type { HostTensor, Tensor, WeightLoadOptions } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { fp8Path } from '../../src/backend/cuda/fp8-linear.ts';
import { dequantizeFp8Rows, quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';

/**
 * The CUDA backend's FP8 weights on the CPU, in float32: it notes what it is asked to store as FP8, quantizes those
 * with the CPU twin (or takes an f8_e4m3 tensor's own codes) and multiplies by their dequantized values; rows of x
 * that the CUDA backend sends through the FP8 GEMM (fp8Path) are quantized per token first, as fp8_quantize_rows
 * does. What is left between the two is the device's 16-bit rounding and summation order.
 */
export class Fp8Cpu extends CpuBackend {
  readonly fp8Weights = true;
  /** Names of the weights stored as FP8, and of the others, in load order. */
  readonly fp8: string[] = [];
  readonly plain: string[] = [];
  private readonly fp8Tensors = new WeakSet<Tensor>();

  constructor() {
    super({ threads: 1 });
  }

  override loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor {
    if (opts?.quantize !== 'fp8' && w.dtype !== 'f8_e4m3') {
      this.plain.push(w.name);
      return super.loadWeight(w, opts);
    }
    this.fp8.push(w.name);
    assert.equal(w.shape.length, 2, `${w.name}: only matrices become FP8`);
    const [rows, cols] = w.shape as [number, number];
    const q =
      w.dtype === 'f8_e4m3' ? { codes: w.bytes, scales: w.rowScales! } : quantizeFp8Rows(toFloat32(w), rows, cols);
    const t = super.loadWeight({ name: w.name, shape: w.shape, dtype: 'f8_e4m3', bytes: q.codes, rowScales: q.scales });
    this.fp8Tensors.add(t);
    return t;
  }

  override linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const rows = x.shape.reduce((a, d) => a * d, 1) / x.shape.at(-1)!;
    if (!this.fp8Tensors.has(weight) || fp8Path(rows, true) === 'gemv') return super.linear(x, weight, bias);
    const cols = x.shape.at(-1)!;
    const xq = dequantizeFp8Rows(quantizeFp8Rows((x as CpuTensor).data, rows, cols), cols);
    return super.linear(new CpuTensor([...x.shape], xq), weight, bias);
  }
}
