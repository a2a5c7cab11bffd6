import { halfToFloat } from './float-bits.ts';
import { isQuantType, type QuantType } from './ggml-types.ts';
import { dequantize } from './quant/index.ts';

/** Element types a backend may store. The CPU backend computes in f32; the CUDA backend in bf16/f16. */
export type DType = 'f32' | 'f16' | 'bf16';

/** A weight as read from disk: raw little-endian bytes in the stored dtype, or ggml blocks of a quant type. */
export interface HostTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType | QuantType;
  readonly bytes: Uint8Array;
}

/** Converts stored bytes to float32 (the CPU backend's compute type). */
export function toFloat32(t: HostTensor): Float32Array {
  if (isQuantType(t.dtype))
    return dequantize(
      t.dtype,
      t.bytes,
      t.shape.reduce((a, d) => a * d, 1),
      t.name,
    );
  const n = t.bytes.byteLength / (t.dtype === 'f32' ? 4 : 2);
  const out = new Float32Array(n);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  if (t.dtype === 'f32') {
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  } else if (t.dtype === 'bf16') {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = dv.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
  }
  return out;
}
