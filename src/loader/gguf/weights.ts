import { encodeAs } from '../../primitives/float-bits.ts';
import { isQuantType } from '../../primitives/ggml-types.ts';
import { type DType, type HostTensor, toFloat32 } from '../../primitives/host-tensor.ts';
import { UserError } from '../../util/errors.ts';
import type { WeightSource } from '../safetensors.ts';
import type { GgufFile, GgufTensorInfo } from './read.ts';
import { hfTensorName, type TensorChange } from './tensor-names.ts';

/** What undoing llama.cpp's changes needs to know of the model. */
export interface GgufWeightShape {
  numHeads: number;
  numKvHeads: number;
}

/**
 * Moves whole rows (any dtype: a quantized row is a run of whole blocks) between llama.cpp's interleaved RoPE order
 * (each head's rows as pairs (i, i + D/2)) and transformers' halves order. `toGguf` picks the direction.
 */
export function permuteRopeRows(bytes: Uint8Array, rows: number, heads: number, toGguf: boolean): Uint8Array {
  const rowBytes = bytes.byteLength / rows;
  const headRows = rows / heads;
  if (!Number.isInteger(headRows) || headRows % 2 !== 0) {
    throw new Error(`RoPE row permutation: ${rows} rows do not split into ${heads} heads of an even size`);
  }
  const half = headRows / 2;
  const out = new Uint8Array(bytes.byteLength);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const gguf = h * headRows + i * 2 + j;
        const hf = h * headRows + j * half + i;
        const [from, to] = toGguf ? [hf, gguf] : [gguf, hf];
        out.set(bytes.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}

/** A float matrix [rows, cols] of 2- or 4-byte elements, transposed. */
export function transposeBytes(bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const size = bytes.byteLength / (rows * cols);
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size;
      out.set(bytes.subarray(from, from + size), (c * rows + r) * size);
    }
  }
  return out;
}

/** Gemma's stored 1 + w back to w (norm weights are F32 in every llama.cpp file). */
function minusOne(t: HostTensor, path: string): Uint8Array {
  if (t.dtype !== 'f32') throw new UserError(`${path}: norm ${t.name} is ${t.dtype}, expected F32`);
  const v = new Float32Array(t.bytes.slice().buffer);
  for (let i = 0; i < v.length; i++) v[i]! -= 1;
  return new Uint8Array(v.buffer);
}

interface Entry {
  info: GgufTensorInfo;
  change: TensorChange | null;
  /** For one expert out of a stacked tensor. */
  expert?: number;
}

/**
 * A GGUF file's tensors under transformers' names with llama.cpp's changes undone, so the model code that loads a
 * safetensors folder loads it unchanged.
 */
export class GgufWeightSource implements WeightSource {
  private readonly index = new Map<string, Entry>();

  /** `dequantizeTo`: quantized tensors come back as this float type (for models with no quantized path). */
  constructor(
    private readonly file: GgufFile,
    arch: string,
    private readonly shape: GgufWeightShape,
    private readonly dequantizeTo?: DType,
  ) {
    for (const info of file.tensors.values()) {
      const mapped = hfTensorName(arch, info.name);
      if (!mapped) continue;
      if (mapped.change?.kind !== 'experts') {
        this.index.set(mapped.name, { info, change: mapped.change });
        continue;
      }
      const experts = info.dims[2] ?? 1;
      for (let e = 0; e < experts; e++) {
        const suffix = info.name.endsWith('.bias') ? 'bias' : 'weight';
        this.index.set(`${mapped.name}.${e}.${mapped.change.part}.${suffix}`, {
          info,
          change: mapped.change,
          expert: e,
        });
      }
    }
  }

  names(): string[] {
    return [...this.index.keys()];
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  get(name: string): HostTensor {
    const t = this.stored(name);
    const to = this.dequantizeTo;
    return to && isQuantType(t.dtype) ? { ...t, dtype: to, bytes: encodeAs(toFloat32(t), to) } : t;
  }

  private stored(name: string): HostTensor {
    const e = this.index.get(name);
    if (!e) throw new UserError(`${this.file.path}: tensor ${name} not found`);
    const c = e.change;
    if (c?.kind === 'experts') {
      // One expert's [rows, cols] out of the stacked [experts, rows, cols]: read just its bytes.
      const experts = e.info.dims[2]!;
      const per = e.info.byteLength / experts;
      const one = {
        ...e.info,
        dims: e.info.dims.slice(0, 2),
        offset: e.info.offset + e.expert! * per,
        byteLength: per,
      };
      return this.file.tensorAt(one, name);
    }
    const t = this.file.tensorAt(e.info, name);
    if (!c) return t;
    const [rows, cols] = [t.shape[0]!, t.shape[1] ?? 1];
    switch (c.kind) {
      case 'rope-rows': {
        const heads = c.heads === 'q' ? this.shape.numHeads : this.shape.numKvHeads;
        return { ...t, bytes: permuteRopeRows(t.bytes, rows, heads, false) };
      }
      case 'norm-plus-one':
        return { ...t, bytes: minusOne(t, this.file.path) };
      case 'transposed':
        if (isQuantType(t.dtype)) {
          throw new UserError(
            `${this.file.path}: ${e.info.name} is ${t.dtype}: quantized GPT-2 matrices are not supported yet`,
          );
        }
        return { ...t, shape: [cols, rows], bytes: transposeBytes(t.bytes, rows, cols) };
    }
  }

  close(): void {
    this.file.close();
  }
}
