import { bf16Bits, f16Bits, halfToFloat } from '../../primitives/float-bits.ts';
import { isQuantType } from '../../primitives/ggml-types.ts';
import type { DType, HostTensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { DTYPE_BYTES, DTYPE_DEFINE } from './tensor.ts';

export const CONVERT_WEIGHT = declareKernel('convert', 'convert_weight', {
  out: 'ptr',
  in: 'ptr',
  count: 'i64',
  first: 'i64',
  rows: 'i64',
  cols: 'i64',
  srcType: 'i32',
  dstType: 'i32',
  transpose: 'i32',
});

/** What kernels/convert.cu does with one chunk: elements [first, first + count) of a [rows, cols] weight. */
export interface Conversion {
  srcType: number;
  dstType: number;
  rows: number;
  cols: number;
  transpose: 0 | 1;
}

/** One launch of the conversion: the chunk at `in` (device staging) into the weight at `out`. */
export interface ConvertJob extends Conversion {
  out: DevPtr;
  in: DevPtr;
  count: number;
  first: number;
}

/**
 * How a stored weight becomes the backend's: its bytes as they are (`conversion` null), or converted and/or
 * transposed on the device. `unit`: the stored element size, on which chunk boundaries must fall.
 */
export function weightLayout(
  w: Pick<HostTensor, 'name' | 'shape' | 'dtype'>,
  dtype: DType,
  transpose: boolean,
): { conversion: Conversion | null; unit: number } {
  if (isQuantType(w.dtype) || w.dtype === 'f8_e4m3') {
    throw new Error(`${w.name}: ${w.dtype} values have no conversion to ${dtype} on upload`);
  }
  const unit = DTYPE_BYTES[w.dtype];
  if (transpose && w.shape.length !== 2) {
    throw new Error(`${w.name}: only a 2-D weight can be transposed, shape [${w.shape}]`);
  }
  if (w.dtype === dtype && !transpose) return { conversion: null, unit };
  const [rows, cols] = w.shape.length === 2 ? (w.shape as [number, number]) : [1, w.shape.reduce((a, d) => a * d, 1)];
  return {
    conversion: {
      srcType: DTYPE_DEFINE[w.dtype],
      dstType: DTYPE_DEFINE[dtype],
      rows,
      cols,
      transpose: transpose ? 1 : 0,
    },
    unit,
  };
}

/** Launches kernels/convert.cu for one chunk on the context's stream. */
export function launchConvert(ctx: CudaContext, job: ConvertJob): void {
  if (job.count > 0) ctx.kernel(CONVERT_WEIGHT).launch(ctx.grid1d(job.count), [256], job);
}

const SIZE = [4, 2, 2];
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bf16Value = (bits: number) => {
  u32[0] = bits << 16;
  return f32[0]!;
};

/** kernels/convert.cu on the host, bit for bit: `chunk` holds the job's elements, `out` the whole weight's bytes. */
export function convertWeightHost(out: Uint8Array, chunk: Uint8Array, job: Omit<ConvertJob, 'out' | 'in'>): void {
  const src = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const dst = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const inSize = SIZE[job.srcType]!;
  const outSize = SIZE[job.dstType]!;
  for (let i = 0; i < job.count; i++) {
    const g = job.first + i;
    const o = job.transpose ? (g % job.cols) * job.rows + Math.floor(g / job.cols) : g;
    if (job.srcType === job.dstType) {
      if (inSize === 4) dst.setUint32(o * 4, src.getUint32(i * 4, true), true);
      else dst.setUint16(o * 2, src.getUint16(i * 2, true), true);
      continue;
    }
    const v =
      job.srcType === 0
        ? src.getFloat32(i * 4, true)
        : job.srcType === 1
          ? halfToFloat(src.getUint16(i * 2, true))
          : bf16Value(src.getUint16(i * 2, true));
    if (job.dstType === 0) dst.setFloat32(o * outSize, v, true);
    else dst.setUint16(o * outSize, job.dstType === 1 ? f16Bits(v) : bf16Bits(v), true);
  }
}
