import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { DType, HostTensor } from '../primitives/host-tensor.ts';
import { LazyHostTensor } from '../primitives/lazy-tensor.ts';
import { readRange } from '../primitives/read-range.ts';
import { UserError } from '../util/errors.ts';

/** Reads tensors lazily from one or more safetensors files: only the header is read up front. */
export interface WeightSource {
  names(): string[];
  has(name: string): boolean;
  /** One tensor; its bytes are read from disk when first asked for. */
  get(name: string): HostTensor;
  close(): void;
}

/** A dtype as stored: a float type a backend loads, or FP8 e4m3, which only a checkpoint's scales give meaning. */
export type StoredDType = DType | 'f8_e4m3';

/** A tensor's bytes as stored, FP8 included. */
export interface StoredTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: StoredDType;
  readonly bytes: Uint8Array;
}

/** Safetensors files also tell a tensor's shape and dtype without reading it (conversion plans the output first). */
export interface SafetensorsWeights extends WeightSource {
  describe(name: string): { shape: readonly number[]; dtype: StoredDType };
  /** Reads one tensor as stored; `get` refuses FP8 tensors, which need their scales (fp8-weights.ts). */
  stored(name: string): StoredTensor;
}

const DTYPES: Record<string, { dtype: StoredDType; size: number }> = {
  F32: { dtype: 'f32', size: 4 },
  F16: { dtype: 'f16', size: 2 },
  BF16: { dtype: 'bf16', size: 2 },
  F8_E4M3: { dtype: 'f8_e4m3', size: 1 },
};

interface Entry {
  file: SafetensorsFile;
  dtype: StoredDType;
  shape: number[];
  begin: number;
  end: number;
}

class SafetensorsFile {
  readonly fd: number;
  readonly entries = new Map<string, Omit<Entry, 'file'>>();

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.parseHeader();
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  private parseHeader(): void {
    const size = fstatSync(this.fd).size;
    if (size < 8) throw new UserError(`${this.path}: file is ${size} bytes, expected at least an 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(this.fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (8 + headerLen > size) {
      throw new UserError(
        `${this.path}: header length ${headerLen} runs past the end of the file (${size} bytes); the file is truncated or not safetensors`,
      );
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(this.fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (err) {
      throw new UserError(`${this.path}: header is not valid JSON (${(err as Error).message})`);
    }
    const dataStart = 8 + headerLen;
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const info = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
      const dt = DTYPES[info.dtype ?? ''];
      if (!dt) {
        throw new UserError(
          `${this.path}: tensor ${name} has dtype ${info.dtype}, expected one of ${Object.keys(DTYPES).join(', ')}`,
        );
      }
      const shape = info.shape ?? [];
      const [b, e] = info.data_offsets ?? [0, 0];
      const count = shape.reduce((a, d) => a * d, 1);
      if (e - b !== count * dt.size) {
        throw new UserError(
          `${this.path}: tensor ${name} spans ${e - b} bytes, expected ${count * dt.size} for shape [${shape}] ${info.dtype}`,
        );
      }
      if (dataStart + e > size) {
        throw new UserError(
          `${this.path}: tensor ${name} ends at byte ${dataStart + e}, past the end of the file (${size} bytes); the file is truncated`,
        );
      }
      this.entries.set(name, { dtype: dt.dtype, shape, begin: dataStart + b, end: dataStart + e });
    }
  }
}

class SafetensorsSource implements SafetensorsWeights {
  private readonly index = new Map<string, Entry>();
  /** A lazy tensor read after close() would read whatever file reused the descriptor. */
  private closed = false;
  constructor(private readonly files: SafetensorsFile[]) {
    for (const f of files) for (const [name, e] of f.entries) this.index.set(name, { ...e, file: f });
  }
  names(): string[] {
    return [...this.index.keys()];
  }
  has(name: string): boolean {
    return this.index.has(name);
  }
  describe(name: string): { shape: readonly number[]; dtype: StoredDType } {
    return this.entry(name);
  }
  private entry(name: string): Entry {
    const e = this.index.get(name);
    if (!e) throw new UserError(`weights: tensor ${name} not found in ${this.files.map((f) => f.path).join(', ')}`);
    return e;
  }
  stored(name: string): StoredTensor {
    const e = this.entry(name);
    const bytes = new Uint8Array(e.end - e.begin);
    readRange(e.file.fd, bytes, e.begin, e.file.path);
    return { name, shape: e.shape, dtype: e.dtype, bytes };
  }
  get(name: string): HostTensor {
    const e = this.entry(name);
    if (e.dtype === 'f8_e4m3') {
      throw new UserError(
        `${e.file.path}: tensor ${name} is F8_E4M3, but config.json has no FP8 quantization_config to give its scales`,
      );
    }
    const open = () => {
      if (this.closed) throw new Error(`${e.file.path}: tensor ${name} read after its file was closed`);
    };
    const read = (dst: Uint8Array, from: number) => {
      open();
      readRange(e.file.fd, dst, e.begin + from, e.file.path);
    };
    const extents = () => {
      open();
      return [{ fd: e.file.fd, position: e.begin, length: e.end - e.begin }];
    };
    return new LazyHostTensor(name, e.shape, e.dtype, e.end - e.begin, read, extents);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.files) closeSync(f.fd);
  }
}

/** Opens `model.safetensors` (or another single `file`), or the shards listed in `model.safetensors.index.json`. */
export function openSafetensors(dir: string, file = 'model.safetensors'): SafetensorsWeights {
  const indexPath = join(dir, `${file}.index.json`);
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (err) {
      throw new UserError(`${indexPath}: not valid JSON (${(err as Error).message})`);
    }
    if (!index.weight_map) throw new UserError(`${indexPath}: missing "weight_map"`);
    const shards = [...new Set(Object.values(index.weight_map))];
    const files: SafetensorsFile[] = [];
    try {
      for (const s of shards) {
        const p = join(dir, s);
        if (!existsSync(p)) throw new UserError(`${indexPath}: shard ${s} listed in weight_map is missing`);
        files.push(new SafetensorsFile(p));
      }
    } catch (err) {
      for (const f of files) closeSync(f.fd);
      throw err;
    }
    return new SafetensorsSource(files);
  }
  const single = join(dir, file);
  if (!existsSync(single)) throw new UserError(`${dir}: no ${file} or ${file}.index.json`);
  return new SafetensorsSource([new SafetensorsFile(single)]);
}

/** Writes a safetensors file (used for the built-in demo model and test fixtures). */
export function encodeSafetensors(tensors: { name: string; shape: number[]; data: Float32Array }[]): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([
    head,
    Buffer.from(json),
    ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ]);
}
