import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ggmlBytes, ggmlTypeOf } from '../../primitives/ggml-types.ts';
import type { HostTensor } from '../../primitives/host-tensor.ts';
import { UserError } from '../../util/errors.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPES,
  type GgufScalar,
  type GgufScalarType,
  type GgufValue,
  SCALAR_BYTES,
} from './format.ts';

/** A tensor to write: row-major shape ([rows, cols] for a matrix), its dtype or quant type, bytes on demand. */
export interface GgufTensorOut {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: HostTensor['dtype'];
  /** The raw bytes (ggml blocks for a quant type), asked for once, when the tensor is written. */
  bytes(): Uint8Array;
}

/** Grows as values are appended; the header is small next to the tensors, so one buffer is fine. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // Each write takes its offset before naming the buffer: `room` may replace it.
  u32(v: number): void {
    const at = this.room(4);
    this.buf.writeUInt32LE(v, at);
  }

  u64(v: number | bigint): void {
    const at = this.room(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    const at = this.room(bytes.length);
    bytes.copy(this.buf, at);
  }

  scalar(type: GgufScalarType, v: GgufScalar, key: string): void {
    if (type === 'string') {
      if (typeof v !== 'string') throw new Error(`gguf metadata ${key}: expected a string, got ${typeof v}`);
      this.string(v);
      return;
    }
    if (type === 'bool' ? typeof v !== 'boolean' : typeof v !== 'number' && typeof v !== 'bigint') {
      throw new Error(`gguf metadata ${key}: ${JSON.stringify(String(v))} is not a ${type}`);
    }
    const at = this.room(SCALAR_BYTES[type]);
    const b = this.buf;
    const n = Number(v);
    switch (type) {
      case 'u8':
        b.writeUInt8(n, at);
        break;
      case 'i8':
        b.writeInt8(n, at);
        break;
      case 'u16':
        b.writeUInt16LE(n, at);
        break;
      case 'i16':
        b.writeInt16LE(n, at);
        break;
      case 'u32':
        b.writeUInt32LE(n, at);
        break;
      case 'i32':
        b.writeInt32LE(n, at);
        break;
      case 'f32':
        b.writeFloatLE(n, at);
        break;
      case 'bool':
        b.writeUInt8(v ? 1 : 0, at);
        break;
      case 'f64':
        b.writeDoubleLE(n, at);
        break;
      case 'u64':
        b.writeBigUInt64LE(BigInt(v as number | bigint), at);
        break;
      case 'i64':
        b.writeBigInt64LE(BigInt(v as number | bigint), at);
        break;
    }
  }

  pad(alignment: number): void {
    this.room((alignment - (this.length % alignment)) % alignment);
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

const typeId = (t: GgufValue['type']) => GGUF_VALUE_TYPES.indexOf(t);

/** The header (GGUF v3) up to the aligned start of the data, and where each tensor's data goes after it. */
function encodeHeader(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensorOut[],
  alignment: number,
): { header: Buffer; sizes: number[]; offsets: number[] } {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, v] of metadata) {
    w.string(key);
    w.u32(typeId(v.type));
    if (v.type !== 'array') {
      w.scalar(v.type, v.value, key);
      continue;
    }
    w.u32(typeId(v.itemType));
    w.u64(v.value.length);
    for (const item of v.value) w.scalar(v.itemType, item, key);
  }
  const sizes: number[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    // FP8 checkpoints are dequantized as they are read for conversion; only a backend keeps their codes.
    if (t.dtype === 'f8_e4m3') throw new Error(`${t.name}: GGUF has no FP8 e4m3 type`);
    const info = ggmlTypeOf(t.dtype);
    const dims = [...t.shape].reverse();
    const size = ggmlBytes(
      info,
      dims.reduce((a, d) => a * d, 1),
    );
    w.string(t.name);
    w.u32(dims.length);
    for (const d of dims) w.u64(d);
    w.u32(info.id);
    w.u64(offset);
    sizes.push(size);
    offsets.push(offset);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.bytes(), sizes, offsets };
}

function alignmentOf(metadata: ReadonlyMap<string, GgufValue>): number {
  const v = metadata.get('general.alignment');
  return v ? Number(v.value) : GGUF_DEFAULT_ALIGNMENT;
}

/**
 * Writes a GGUF v3 file tensor by tensor (each tensor's bytes are asked for as it is written, so a model never sits
 * in memory whole); the file appears under `path` only once complete.
 */
export function writeGguf(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorOut[]) {
  const alignment = alignmentOf(metadata);
  const { header, sizes } = encodeHeader(metadata, tensors, alignment);
  checkOutputPath(path);
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeSync(fd, header);
    tensors.forEach((t, i) => {
      const bytes = t.bytes();
      if (bytes.byteLength !== sizes[i]) {
        throw new Error(
          `gguf: tensor ${t.name} has ${bytes.byteLength} bytes, expected ${sizes[i]} for its shape and type`,
        );
      }
      writeSync(fd, bytes);
      const pad = (alignment - (bytes.byteLength % alignment)) % alignment;
      if (pad) writeSync(fd, Buffer.alloc(pad));
    });
  } catch (err) {
    closeSync(fd);
    rmSync(partial, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(partial, path);
}

/** Refuses, before anything is written, an output path whose folder is missing or that is a folder itself. */
function checkOutputPath(path: string): void {
  if (!existsSync(dirname(resolve(path)))) {
    throw new UserError(`${path}: the folder ${dirname(path)} does not exist (expected a GGUF file path to write)`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UserError(`${path}: is a folder (expected a GGUF file path to write)`);
  }
}

/** A whole GGUF file in memory (tests, small vocabularies). */
export function encodeGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly HostTensor[]): Buffer {
  const alignment = alignmentOf(metadata);
  const { header, sizes, offsets } = encodeHeader(
    metadata,
    tensors.map((t) => ({ ...t, bytes: () => t.bytes })),
    alignment,
  );
  const end = tensors.length ? offsets.at(-1)! + Math.ceil(sizes.at(-1)! / alignment) * alignment : 0;
  const out = Buffer.alloc(header.length + end);
  header.copy(out);
  tensors.forEach((t, i) => {
    if (t.bytes.byteLength !== sizes[i])
      throw new Error(`gguf: tensor ${t.name} has ${t.bytes.byteLength} bytes, expected ${sizes[i]}`);
    out.set(t.bytes, header.length + offsets[i]!);
  });
  return out;
}
