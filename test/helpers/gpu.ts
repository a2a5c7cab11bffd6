import type { DType, HostTensor } from '../../src/backend/backend.ts';
import { probeCuda } from '../../src/backend/cuda/device.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { bf16Bits, f16Bits, halfToFloat } from '../../src/primitives/float-bits.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** false when a CUDA device is usable, else the reason (pass to `test(..., { skip })`). */
export function gpuSkip(): false | string {
  const p = probeCuda();
  return p instanceof CudaUnavailable ? `no usable CUDA device: ${p.reason}` : false;
}

/** Fresh random values in [-scale, scale), rounded to the device's 16-bit storage type so both sides see the same input. */
export function randomValues(n: number, seed: number, scale = 1, dtype: DType = 'f32'): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    out[i] = (r() * 2 - 1) * scale;
    if (dtype === 'bf16') u32[i] = bf16Bits(out[i]!) << 16;
    else if (dtype === 'f16') out[i] = halfToFloat(f16Bits(out[i]!));
  }
  return out;
}

export function hostTensor(name: string, shape: number[], values: Float32Array): HostTensor {
  return { name, shape, dtype: 'f32', bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** ‖a − b‖ / ‖b‖; NaN anywhere gives Infinity. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) return Number.POSITIVE_INFINITY;
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
