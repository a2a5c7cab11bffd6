import assert from 'node:assert/strict';
import type { DType, GatedActivation, HostTensor, Tensor, WeightLoadOptions } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { type Fp8GemvChoice, fp8RouteFor } from '../../src/backend/cuda/fp8-gemv.ts';
import { fp8Path } from '../../src/backend/cuda/fp8-linear.ts';
import { decodeFrom } from '../../src/backend/cuda/tensor.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { E4M3, quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { LowPrecisionCpu } from './low-precision-cpu.ts';

/** An FP8 weight as the twin multiplies it: its e4m3 values (exact in float64) and row scales. */
interface Fp8Weight {
  values: Float64Array;
  scales: Float32Array;
  rows: number;
  cols: number;
}

/**
 * Σ_k x[t, k] · wq[m, k] over e4m3 weight values, [T, M], in float64: x per token as e4m3 values (each product of two
 * e4m3 values exact, and so their sum: multiples of 2^-18 below 2^35), or x as stored (the CUDA-core GEMV). The CUDA
 * FP8 GEMVs and GEMM differ from it by their float32 summation.
 */
function codeProducts(xv: Float64Array, T: number, w: Fp8Weight): Float64Array {
  const { rows: M, cols: K, values } = w;
  const s = new Float64Array(T * M);
  for (let t = 0; t < T; t++) {
    const xr = xv.subarray(t * K, (t + 1) * K);
    for (let m = 0; m < M; m++) {
      const wr = values.subarray(m * K, (m + 1) * K);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += xr[k]! * wr[k]!;
      s[t * M + m] = sum;
    }
  }
  return s;
}

// biome-ignore lint/suspicious/noExplicitAny: TypeScript's mixin pattern needs a constructor of (...args: any[]).
type CpuBackendClass = new (...args: any[]) => CpuBackend;

/**
 * The CUDA backend's FP8 weights on a CPU backend class: it notes what it is asked to store as FP8, quantizes those
 * with the CPU twin (or takes an f8_e4m3 tensor's own codes) and multiplies them as the device does at every row
 * count, decode (the FP8 GEMV) and prefill (the FP8 GEMM) alike: x quantized per token to e4m3 (fp8_quantize_rows'
 * twin), exact products of the codes, then the token's and the row's scales and the bias; with `route` taking the CUDA-core route
 * decode rows multiply x as it is by the weight's e4m3 values, then the row's scale and the bias. With `storage` (a 16-bit
 * type) it also rounds where the device stores: the weight before it is quantized at load, the GEMM's unscaled bf16
 * product, the output; the gated decode GEMV keeps gate and up in float until act(gate) · up is stored.
 */
function withFp8Weights<B extends CpuBackendClass>(Base: B) {
  return class Fp8Weights extends Base {
    /** The 16-bit type the device stores activations in (null: none, float32 throughout). */
    storage: Exclude<DType, 'f32'> | null = null;
    readonly fp8Weights = true;
    /** The device's FP8 GEMV route (CudaSettings.fp8GemvRoute), which decides how decode rows treat x. */
    route: Fp8GemvChoice = 'tensor-cores';
    /** Names of the weights stored as FP8, and of the others, in load order. */
    readonly fp8: string[] = [];
    readonly plain: string[] = [];
    private readonly fp8Tensors = new WeakMap<Tensor, Fp8Weight>();

    /** `v` rounded to `dtype` (default: the storage type; none: as it is). */
    private roundStored(v: Float32Array, dtype: DType | null = this.storage): Float32Array {
      return dtype ? decodeFrom(encodeAs(v, dtype), dtype) : v;
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
        w.dtype === 'f8_e4m3'
          ? { codes: w.bytes, scales: w.rowScales! }
          : quantizeFp8Rows(this.roundStored(toFloat32(w)), rows, cols);
      const t = super.loadWeight({
        name: w.name,
        shape: w.shape,
        dtype: 'f8_e4m3',
        bytes: q.codes,
        rowScales: q.scales,
      });
      const values = Float64Array.from(q.codes, (c) => E4M3[c]!);
      this.fp8Tensors.set(t, { values, scales: Float32Array.from(q.scales), rows, cols });
      return t;
    }

    /** x's rows, its products with `w`'s codes and the scale of each output (token × row, or row), or null: not FP8. */
    private products(x: Tensor, weight: Tensor) {
      const w = this.fp8Tensors.get(weight);
      if (!w) return null;
      const cols = x.shape.at(-1)!;
      assert.equal(cols, w.cols, 'linear: input features against the FP8 weight');
      const T = x.shape.reduce((a, d) => a * d, 1) / cols;
      const data = (x as CpuTensor).data;
      const decode = fp8Path(T, this.route) === 'gemv';
      if (decode && fp8RouteFor(T, this.route) === 'cuda-cores') {
        const scale = (_t: number, m: number) => w.scales[m]!;
        return { w, T, s: codeProducts(Float64Array.from(data), T, w), scale, decode };
      }
      const xq = quantizeFp8Rows(data, T, cols);
      const scale = (t: number, m: number) => Math.fround(xq.scales[t]! * w.scales[m]!);
      return {
        w,
        T,
        s: codeProducts(
          Float64Array.from(xq.codes, (c) => E4M3[c]!),
          T,
          w,
        ),
        scale,
        decode,
      };
    }

    override linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
      const p = this.products(x, weight);
      if (!p) return super.linear(x, weight, bias);
      const { w, T, s, scale } = p;
      const b = bias ? (bias as CpuTensor).data : null;
      // The 16-bit GEMM path writes its unscaled product as bf16 before the scales (fp8_scale_rows).
      const acc = this.storage && !p.decode ? this.roundStored(Float32Array.from(s), 'bf16') : s;
      const y = new Float32Array(T * w.rows);
      for (let i = 0; i < y.length; i++)
        y[i] = acc[i]! * scale(Math.floor(i / w.rows), i % w.rows) + (b ? b[i % w.rows]! : 0);
      return new CpuTensor([...x.shape.slice(0, -1), w.rows], this.roundStored(y));
    }

    override linearActMul(x: Tensor, weight: Tensor, bias: Tensor | undefined, act: GatedActivation): Tensor {
      const p = this.storage ? this.products(x, weight) : null;
      if (!p?.decode) return super.linearActMul(x, weight, bias, act);
      const { w, T, s, scale } = p;
      const n = w.rows / 2;
      const b = bias ? (bias as CpuTensor).data : null;
      const f = act === 'silu' ? (g: number) => g / (1 + Math.exp(-g)) : geluTanh;
      const y = new Float32Array(T * n);
      for (let t = 0; t < T; t++) {
        for (let c = 0; c < n; c++) {
          const gate = s[t * w.rows + c]! * scale(t, c) + (b ? b[c]! : 0);
          const up = s[t * w.rows + n + c]! * scale(t, n + c) + (b ? b[n + c]! : 0);
          y[t * n + c] = f(gate) * up;
        }
      }
      return new CpuTensor([...x.shape.slice(0, -1), n], this.roundStored(y));
    }
  };
}

const geluTanh = (g: number) => 0.5 * g * (1 + Math.tanh(0.7978845608028654 * (g + 0.044715 * g ** 3)));

/** The FP8 twin in float32: what FP8 weights and activations compute, apart from any 16-bit storage. */
export class Fp8Cpu extends withFp8Weights(CpuBackend) {
  constructor() {
    super({ threads: 1 });
  }
}

/**
 * The FP8 twin over LowPrecisionCpu's 16-bit storage, where the CUDA backend rounds: the reference for the device's
 * logits. Per-token e4m3 activations make the forward sensitive to the 16-bit rounding of x (a value moved by a
 * 16-bit step can cross an e4m3 rounding boundary, a step of 2^-3): on the random tiny-*-256 fixtures bf16 activations
 * alone move the float32 twin's logits by 10-20 % (relative L2), while this twin's float32 sums against exact ones
 * move its logits by less than 1e-3.
 */
export class Fp8LowPrecisionCpu extends withFp8Weights(LowPrecisionCpu) {
  constructor(dtype: Exclude<DType, 'f32'>) {
    super(dtype);
    this.storage = dtype;
  }
}
