import { encodeAs } from '../../primitives/float-bits.ts';
import { toFloat32 } from '../../primitives/host-tensor.ts';
import type { DType, HostTensor, Tensor } from '../backend.ts';
import type { DevPtr } from './driver.ts';
import type { QuantizedX } from './x-form.ts';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };
/** The `PAGODA_DTYPE` define the kernels are compiled with for each storage type. */
export const DTYPE_DEFINE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2 };

/**
 * A row-major tensor in device memory (weights, KV cache, or a slice of the step's activation arena). `quantized`:
 * the same values in the form the linear layer it feeds reads them, written beside them by the op that made them
 * (an RMSNorm told what it feeds), so that linear skips its own quantizing pass.
 */
export class CudaTensor implements Tensor {
  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly ptr: DevPtr,
    readonly quantized?: QuantizedX,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, d) => a * d, 1);
  }

  get bytes(): number {
    return this.numel * DTYPE_BYTES[this.dtype];
  }
}

export function cuda(t: Tensor): CudaTensor {
  if (!(t instanceof CudaTensor)) throw new Error('tensor does not belong to the CUDA backend');
  return t;
}

/** The same elements under another shape (no quantized copy: its groups follow the old rows). */
export function viewOf(c: CudaTensor, shape: readonly number[]): CudaTensor {
  const n = shape.reduce((a, d) => a * d, 1);
  if (n !== c.numel) throw new Error(`view: [${c.shape}] has ${c.numel} elements, [${shape}] has ${n}`);
  return new CudaTensor([...shape], c.dtype, c.ptr);
}

/** `[rows, cols]` of a tensor seen as a matrix over its last dimension. */
export function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape[t.shape.length - 1] ?? 1;
  const n = t.shape.reduce((a, d) => a * d, 1);
  return [cols ? n / cols : 0, cols];
}

/** Decodes `dtype` bytes to float32. */
export function decodeFrom(bytes: Uint8Array, dtype: DType, shape: readonly number[] = []): Float32Array {
  return toFloat32({ name: '', shape, dtype, bytes });
}

/** Host bytes of a tensor's elements as float32 (an f32 tensor's bytes viewed, not copied). */
export function decoded(bytes: Uint8Array, dtype: DType): Float32Array {
  return dtype === 'f32' ? new Float32Array(bytes.buffer) : decodeFrom(bytes, dtype);
}

/**
 * A weight's bytes in the backend's storage type, transposed when asked (2-D only), converted on the host: the path
 * weights took before the upload ring (weight-upload.ts), kept as the reference its device conversions are held to.
 */
export function hostBytesAs(w: HostTensor, dtype: DType, transpose: boolean): Uint8Array {
  let bytes = w.dtype === dtype ? w.bytes : encodeAs(toFloat32(w), dtype);
  if (transpose) {
    if (w.shape.length !== 2) throw new Error(`${w.name}: only a 2-D weight can be transposed, shape [${w.shape}]`);
    const [r, c] = w.shape as [number, number];
    const size = DTYPE_BYTES[dtype];
    const src =
      size === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, r * c) : new Uint16Array(bytes.slice().buffer);
    const dst = size === 4 ? new Uint32Array(r * c) : new Uint16Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) dst[j * r + i] = src[i * c + j]!;
    bytes = new Uint8Array(dst.buffer);
  }
  return bytes;
}
