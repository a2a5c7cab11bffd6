import { join } from 'node:path';
import { encodeAs } from '../primitives/float-bits.ts';
import { E4M3 } from '../primitives/fp8.ts';
import { DTYPE_NAMES, type DType, type HostTensor, toFloat32 } from '../primitives/host-tensor.ts';
import { UserError } from '../util/errors.ts';
import type { ModelConfig } from './hf-config.ts';
import { type Fp8Checkpoint, type Fp8Layout, layoutName, parseQuantizationConfig } from './quantization-config.ts';
import { openSafetensors, type SafetensorsWeights, type StoredDType, type WeightSource } from './safetensors.ts';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The scale shapes `layout` allows for a weight `[out, in]`, and the tile one scale covers. */
function scaleShapes(l: Fp8Layout, out: number, cols: number): { shapes: number[][]; tile: [number, number] } {
  if (l.kind === 'tensor') return { shapes: [[], [1]], tile: [out, cols] };
  if (l.kind === 'channel') return { shapes: [[out, 1]], tile: [1, cols] };
  return { shapes: [[Math.ceil(out / l.rows), Math.ceil(cols / l.cols)]], tile: [l.rows, l.cols] };
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * value = fp8 · scale of its tile, rounded once to float32 (the product of an e4m3 value and a float32 scale is exact
 * in a double), as a float32 multiply would give it.
 */
export function dequantizeFp8(
  codes: Uint8Array,
  [out, cols]: readonly [number, number],
  scales: Float32Array,
  [tileRows, tileCols]: readonly [number, number],
): Float32Array {
  const values = new Float32Array(out * cols);
  const scaleCols = Math.ceil(cols / tileCols);
  for (let i = 0; i < out; i++) {
    const scaleRow = Math.floor(i / tileRows) * scaleCols;
    for (let j0 = 0; j0 < cols; j0 += tileCols) {
      const s = scales[scaleRow + j0 / tileCols]!;
      const end = Math.min(j0 + tileCols, cols);
      for (let j = j0; j < end; j++) values[i * cols + j] = E4M3[codes[i * cols + j]!]! * s;
    }
  }
  return values;
}

/**
 * A checkpoint's weights with every F8_E4M3 tensor dequantized, tensor by tensor as it is read, to `dtype` (the
 * backend's compute type) through its scale tensor, or with `keep`, those scaled per tensor or per channel kept as
 * their e4m3 bytes with a scale per row (`f8_e4m3`, for a backend with FP8 weights); other tensors (norms,
 * embeddings, the ignored LM head) pass as stored. Activation scales (`input_scale`) and FP8 KV cache scales
 * (`k_scale`, `v_scale`) stay readable by name.
 */
class Fp8Weights implements CheckpointWeights {
  constructor(
    private readonly inner: SafetensorsWeights,
    private readonly fp8: Fp8Checkpoint,
    private readonly dtype: DType,
    private readonly dir: string,
    private readonly keep: boolean,
  ) {}

  names(): string[] {
    return this.inner.names();
  }
  /** Shape as stored; an FP8 weight's dtype as it will be read (the compute dtype, or f8_e4m3 where kept). */
  describe(name: string): { shape: readonly number[]; dtype: StoredDType } {
    const d = this.inner.describe(name);
    return d.dtype === 'f8_e4m3' ? { shape: d.shape, dtype: this.keep ? 'f8_e4m3' : this.dtype } : d;
  }
  has(name: string): boolean {
    return this.inner.has(name);
  }
  close(): void {
    this.inner.close();
  }

  get(name: string): HostTensor {
    if (this.inner.describe(name).dtype !== 'f8_e4m3') return this.inner.get(name);
    const w = this.inner.stored(name);
    if (w.shape.length !== 2 || !name.endsWith('.weight')) {
      throw new UserError(
        `${this.dir}: tensor ${name} is F8_E4M3 with shape ${fmt(w.shape)}, expected only linear weights X.weight [out, in] in FP8`,
      );
    }
    const [out, cols] = w.shape as [number, number];
    const options = this.fp8.layouts.map((l) => ({ layout: l, ...scaleShapes(l, out, cols) }));
    const expected = options.map((o) => `${fmt(o.shapes.at(-1)!)} (${layoutName(o.layout)})`).join(' or ');
    const scaleName = `${name.slice(0, -'weight'.length)}${this.fp8.scaleSuffix}`;
    if (!this.inner.has(scaleName)) {
      throw new UserError(
        `${this.dir}: tensor ${scaleName} is missing (the scale of FP8 weight ${name} ${fmt(w.shape)}, expected shape ${expected})`,
      );
    }
    const scale = this.inner.get(scaleName);
    const match = options.find((o) => o.shapes.some((s) => sameShape(s, scale.shape)));
    if (!match) {
      throw new UserError(
        `${this.dir}: tensor ${scaleName} has shape ${fmt(scale.shape)}, expected ${expected} for FP8 weight ${name} ${fmt(w.shape)}`,
      );
    }
    const scales = toFloat32(scale);
    if (this.keep && match.layout.kind !== 'block') {
      const rowScales = scales.length === out ? scales : new Float32Array(out).fill(scales[0]!);
      return { name, shape: w.shape, dtype: 'f8_e4m3', bytes: w.bytes, rowScales };
    }
    const values = dequantizeFp8(w.bytes, [out, cols], scales, match.tile);
    return { name, shape: w.shape, dtype: this.dtype, bytes: encodeAs(values, this.dtype) };
  }
}

/**
 * Whether FP8 weights of `fp8`'s layouts stay FP8 on a backend with FP8 weights: per tensor and per channel become
 * one scale per row as they are; 128 x 128 blocks (a scale per block of rows and of columns) are dequantized, as the
 * GEMV and the GEMM epilogue apply one scale per output row.
 */
export function keepsFp8(fp8: Fp8Checkpoint): boolean {
  return fp8.layouts.every((l) => l.kind !== 'block');
}

/** A checkpoint's weights as read, each tensor's shape and dtype known before it is read (conversion plans first). */
export type CheckpointWeights = WeightSource & Pick<SafetensorsWeights, 'describe'>;

/**
 * The safetensors weights of the folder `dir` as a backend computing in `dtype` takes them: an FP8 checkpoint's
 * weights dequantized as they load, or kept as FP8 where `fp8Weights` (the backend has them) and the layout allows
 * (`keepsFp8`), with the start-up line saying which (`note`). Any quantization_config other than FP8 is refused here,
 * in one line.
 */
export function openCheckpoint(
  dir: string,
  config: ModelConfig,
  dtype: DType,
  fp8Weights = false,
): { weights: CheckpointWeights; note: string | null } {
  const fp8 = parseQuantizationConfig(config.raw, join(dir, 'config.json'));
  const weights = openSafetensors(dir);
  if (!fp8) return { weights, note: null };
  const keep = fp8Weights && keepsFp8(fp8);
  return {
    weights: new Fp8Weights(weights, fp8, dtype, dir, keep),
    note: keep
      ? `weights: ${fp8.summary} kept as FP8 (e4m3, a scale per output row; other tensors ${DTYPE_NAMES[dtype]})`
      : `weights: ${fp8.summary} dequantized to ${DTYPE_NAMES[dtype]} at load${fp8Weights ? ' (FP8 GEMMs take one scale per output row, not blocks)' : ''}`,
  };
}
