import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GGML_TYPES, type GgmlTypeInfo, ggmlTypeById } from '../../primitives/ggml-types.ts';
import type { HostTensor } from '../../primitives/host-tensor.ts';
import { LazyHostTensor } from '../../primitives/lazy-tensor.ts';
import { readRange } from '../../primitives/read-range.ts';
import { UserError } from '../../util/errors.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GGUF_VALUE_TYPES,
  type GgufScalar,
  type GgufScalarType,
  type GgufValue,
  SCALAR_BYTES,
} from './format.ts';

/** One tensor's header entry; `dims` in ggml order (ne[0], the contiguous one, first). */
export interface GgufTensorInfo {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: GgmlTypeInfo;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

const HEADER_CHUNK = 1 << 20;

/** Sequential reads of the header through a window of the file, every read checked against the file's size. */
class HeaderCursor {
  pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly path: string,
  ) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  private need(n: number, what: string): number {
    if (this.pos + n > this.size) {
      throw new UserError(
        `${this.path}: GGUF header truncated: ${what} needs ${n} bytes at byte ${this.pos} of ${this.size}`,
      );
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.buf.length) {
      this.buf = Buffer.alloc(Math.min(Math.max(n, HEADER_CHUNK), this.size - this.pos));
      readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u32(what: string): number {
    const at = this.need(4, what);
    return this.buf.readUInt32LE(at);
  }

  /** A u64 count or size, refused past 2^53 (no file holds that much). */
  u64(what: string): number {
    const at = this.need(8, what);
    const v = this.buf.readBigUInt64LE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UserError(`${this.path}: ${what} is ${v}, an impossible size`);
    return Number(v);
  }

  string(what: string): string {
    const len = this.u64(`${what}'s length`);
    if (len > this.remaining) {
      throw new UserError(
        `${this.path}: ${what} claims ${len} bytes at byte ${this.pos}, past the end of the file (${this.size} bytes)`,
      );
    }
    const at = this.need(len, what);
    return this.buf.toString('utf8', at, at + len);
  }

  scalar(type: GgufScalarType, what: string): GgufScalar {
    if (type === 'string') return this.string(what);
    const at = this.need(SCALAR_BYTES[type], what);
    const b = this.buf;
    switch (type) {
      case 'u8':
        return b.readUInt8(at);
      case 'i8':
        return b.readInt8(at);
      case 'u16':
        return b.readUInt16LE(at);
      case 'i16':
        return b.readInt16LE(at);
      case 'u32':
        return b.readUInt32LE(at);
      case 'i32':
        return b.readInt32LE(at);
      case 'f32':
        return b.readFloatLE(at);
      case 'bool':
        return b.readUInt8(at) !== 0;
      case 'f64':
        return b.readDoubleLE(at);
      case 'u64':
      case 'i64': {
        const v = type === 'u64' ? b.readBigUInt64LE(at) : b.readBigInt64LE(at);
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
    }
  }
}

/** A value type id → its name, or a one-line refusal naming where it was met. */
function valueType(id: number, path: string, what: string): (typeof GGUF_VALUE_TYPES)[number] {
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) {
    throw new UserError(
      `${path}: ${what} has unknown GGUF value type ${id} (expected 0..${GGUF_VALUE_TYPES.length - 1})`,
    );
  }
  return t;
}

/** A GGUF file (v2 or v3, little-endian): metadata and tensor infos read up front, tensor bytes on demand. */
export class GgufFile {
  readonly version: number;
  readonly metadata = new Map<string, GgufValue>();
  readonly tensors = new Map<string, GgufTensorInfo>();
  readonly alignment: number;
  /** Where the tensor data section starts. */
  readonly dataOffset: number;
  /** Open while tensors are being read; the header alone needs no descriptor kept. */
  private fd: number | null;

  private constructor(readonly path: string) {
    const fd = openSync(path, 'r');
    this.fd = fd;
    try {
      const c = new HeaderCursor(fd, fstatSync(fd).size, path);
      if (c.size < 4 || c.u32('magic') !== GGUF_MAGIC) {
        throw new UserError(`${path}: not a GGUF file (it does not start with the bytes "GGUF")`);
      }
      this.version = c.u32('version');
      if (this.version !== 2 && this.version !== 3) {
        const hint = this.version === 1 ? ' (GGUF v1 predates 64-bit counts; convert it again)' : '';
        throw new UserError(`${path}: GGUF version ${this.version} is not supported (expected 2 or 3)${hint}`);
      }
      const tensorCount = c.u64('tensor count');
      const kvCount = c.u64('metadata count');
      // Smallest possible entries: a key is 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8.
      if (kvCount * 13 > c.remaining || tensorCount * 32 > c.remaining) {
        throw new UserError(
          `${path}: header claims ${tensorCount} tensors and ${kvCount} metadata keys, more than a ${c.size}-byte file can hold`,
        );
      }
      for (let i = 0; i < kvCount; i++) this.readKeyValue(c);
      const align = this.metadata.get('general.alignment');
      this.alignment = align ? Number(align.value) : GGUF_DEFAULT_ALIGNMENT;
      if (!Number.isInteger(this.alignment) || this.alignment < 1 || this.alignment % 8 !== 0) {
        throw new UserError(`${path}: general.alignment is ${align?.value}, expected a positive multiple of 8`);
      }
      const infos = Array.from({ length: tensorCount }, () => this.readTensorInfo(c));
      this.dataOffset = Math.ceil(c.pos / this.alignment) * this.alignment;
      for (const t of infos) this.addTensor(t, c.size);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  static open(path: string): GgufFile {
    return new GgufFile(path);
  }

  private readKeyValue(c: HeaderCursor): void {
    const key = c.string('metadata key');
    const type = valueType(c.u32(`metadata ${key}'s type`), this.path, `metadata ${key}`);
    if (type !== 'array') {
      this.metadata.set(key, { type, value: c.scalar(type, `metadata ${key}`) });
      return;
    }
    const itemType = valueType(c.u32(`metadata ${key}'s item type`), this.path, `metadata ${key}`);
    if (itemType === 'array')
      throw new UserError(`${this.path}: metadata ${key} is an array of arrays (not supported)`);
    const count = c.u64(`metadata ${key}'s length`);
    const minItem = itemType === 'string' ? 8 : SCALAR_BYTES[itemType];
    if (count * minItem > c.remaining) {
      throw new UserError(
        `${this.path}: metadata ${key} claims ${count} items, more than the rest of the file (${c.remaining} bytes) holds`,
      );
    }
    const value = Array.from({ length: count }, () => c.scalar(itemType, `metadata ${key}`));
    this.metadata.set(key, { type: 'array', itemType, value });
  }

  private readTensorInfo(c: HeaderCursor): { name: string; dims: number[]; typeId: number; rel: number } {
    const name = c.string('tensor name');
    const nDims = c.u32(`tensor ${name}'s dimension count`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
      throw new UserError(`${this.path}: tensor ${name} has ${nDims} dimensions (expected 1 to ${GGUF_MAX_DIMS})`);
    }
    const dims = Array.from({ length: nDims }, () => c.u64(`tensor ${name}'s dimensions`));
    return { name, dims, typeId: c.u32(`tensor ${name}'s type`), rel: c.u64(`tensor ${name}'s offset`) };
  }

  private addTensor(t: { name: string; dims: number[]; typeId: number; rel: number }, size: number): void {
    const type = ggmlTypeById(t.typeId);
    if (!type) {
      throw new UserError(
        `${this.path}: tensor ${t.name} has unknown ggml type id ${t.typeId} (known: ${GGML_TYPES.map((x) => x.id).join(', ')})`,
      );
    }
    if (this.tensors.has(t.name)) throw new UserError(`${this.path}: tensor ${t.name} appears twice`);
    const count = t.dims.reduce((a, d) => a * d, 1);
    if (t.dims[0]! % type.blockSize !== 0 || !Number.isSafeInteger(count)) {
      throw new UserError(
        `${this.path}: tensor ${t.name} has dimensions [${t.dims}], not whole ${type.name} blocks of ${type.blockSize}`,
      );
    }
    const byteLength = (count / type.blockSize) * type.typeSize;
    const offset = this.dataOffset + t.rel;
    if (offset + byteLength > size) {
      throw new UserError(
        `${this.path}: tensor ${t.name} ends at byte ${offset + byteLength}, past the end of the file (${size} bytes); the file is truncated`,
      );
    }
    this.tensors.set(t.name, { name: t.name, dims: t.dims, type, offset, byteLength });
  }

  /** A metadata value without its type (arrays as arrays). */
  value(key: string): GgufScalar | GgufScalar[] | undefined {
    return this.metadata.get(key)?.value;
  }

  /** Reads one tensor's raw bytes. */
  readBytes(info: GgufTensorInfo): Uint8Array {
    const bytes = new Uint8Array(info.byteLength);
    this.readAt(bytes, info.offset);
    return bytes;
  }

  private readAt(dst: Uint8Array, position: number): void {
    this.fd ??= openSync(this.path, 'r');
    readRange(this.fd, dst, position, this.path);
  }

  /**
   * One tensor as pagoda stores it: shape in row-major order (ggml's dims reversed, so a matrix is [rows, cols]),
   * dtype the float type or the quant type whose blocks `bytes` holds, read from the file when first asked for. Types
   * pagoda cannot compute with are refused.
   */
  readTensor(name: string): HostTensor {
    const info = this.tensors.get(name);
    if (!info) throw new UserError(`${this.path}: tensor ${name} not found`);
    return this.tensorAt(info);
  }

  /**
   * readTensor for an info of this file's, or a part of one (one expert's rows of a stacked tensor), named `as` (a
   * transformers name) when given.
   */
  tensorAt(info: GgufTensorInfo, as: string = info.name): HostTensor {
    if (!info.type.stored) {
      const ok = GGML_TYPES.filter((x) => x.stored).map((x) => x.name);
      throw new UserError(
        `${this.path}: tensor ${info.name} is ${info.type.name}, which pagoda cannot load (supported: ${ok.join(', ')})`,
      );
    }
    return new LazyHostTensor(as, [...info.dims].reverse(), info.type.stored, info.byteLength, (dst, from) =>
      this.readAt(dst, info.offset + from),
    );
  }

  /** Closes the descriptor; a later read opens it again. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** True when the file starts with GGUF's magic bytes (Ollama's blobs have no extension). */
export function hasGgufMagic(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32LE(0) === GGUF_MAGIC;
  } finally {
    closeSync(fd);
  }
}
