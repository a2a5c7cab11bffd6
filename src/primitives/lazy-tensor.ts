import type { HostTensor } from './host-tensor.ts';

/** Copies bytes `[from, from + dst.length)` of a tensor into `dst`. */
export type ByteReader = (dst: Uint8Array, from: number) => void;

/**
 * A run of a tensor's bytes in an open file. File descriptors belong to the process, so a worker thread given the
 * runs reads the bytes itself (positioned reads, straight into shared memory).
 */
export interface FileExtent {
  readonly fd: number;
  readonly position: number;
  readonly length: number;
}

/**
 * A tensor's runs in order, or null when its bytes are not all a file's; it throws once their file is closed (a
 * descriptor may have been reused).
 */
export type ExtentsOf = () => readonly FileExtent[] | null;

/**
 * A weight whose bytes stay on disk until asked for: `readInto` copies any range straight into a caller's buffer (the
 * CUDA backend's pinned staging), while `bytes` reads the whole tensor once, on first use, for everything else.
 * `bytes` is an own enumerable getter and the rest private or on the prototype, so a spread (`{ ...t, bytes }`, a
 * changed copy) is a plain HostTensor with correct bytes, never a reader of the original's.
 */
export class LazyHostTensor implements HostTensor {
  declare readonly bytes: Uint8Array;
  readonly #byteLength: number;
  readonly #reader: ByteReader;
  readonly #extents: ExtentsOf | undefined;
  #read: Uint8Array | null = null;

  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: HostTensor['dtype'],
    byteLength: number,
    reader: ByteReader,
    extents?: ExtentsOf,
  ) {
    this.#byteLength = byteLength;
    this.#reader = reader;
    this.#extents = extents;
    Object.defineProperty(this, 'bytes', {
      enumerable: true,
      get: () => {
        if (!this.#read) {
          const all = new Uint8Array(this.#byteLength);
          this.#reader(all, 0);
          this.#read = all;
        }
        return this.#read;
      },
    });
  }

  get byteLength(): number {
    return this.#byteLength;
  }

  /** Where the bytes lie in their files, when they are a file's; null once read (they are in memory then). */
  fileExtents(): readonly FileExtent[] | null {
    return this.#read || !this.#extents ? null : this.#extents();
  }

  readInto(dst: Uint8Array, from: number): void {
    if (from < 0 || from + dst.length > this.#byteLength) {
      throw new Error(`${this.name}: bytes [${from}, ${from + dst.length}) are outside its ${this.#byteLength}`);
    }
    if (this.#read) dst.set(this.#read.subarray(from, from + dst.length));
    else this.#reader(dst, from);
  }
}

/** A tensor's byte length, without reading a lazy one. */
export function hostByteLength(t: HostTensor): number {
  return t instanceof LazyHostTensor ? t.byteLength : t.bytes.byteLength;
}

/** Bytes `[from, from + dst.length)` of any host tensor into `dst`: from disk for a lazy one, else from `bytes`. */
export function readHostBytes(t: HostTensor, dst: Uint8Array, from: number): void {
  if (t instanceof LazyHostTensor) t.readInto(dst, from);
  else dst.set(t.bytes.subarray(from, from + dst.length));
}

/** A tensor's runs in its files, or null when its bytes are not a file's as they stand. */
export function fileExtentsOf(t: HostTensor): readonly FileExtent[] | null {
  return t instanceof LazyHostTensor ? t.fileExtents() : null;
}

/**
 * Tensors laid end to end as one (packed q/k/v, gate/up), each part read only when its range is asked for; its file
 * runs are its parts' when every part has them.
 */
export function concatHostTensors(
  name: string,
  shape: readonly number[],
  dtype: HostTensor['dtype'],
  parts: readonly HostTensor[],
): LazyHostTensor {
  const starts: number[] = [];
  let total = 0;
  for (const p of parts) {
    starts.push(total);
    total += hostByteLength(p);
  }
  const read: ByteReader = (dst, from) => {
    const end = from + dst.length;
    parts.forEach((p, i) => {
      const lo = Math.max(from, starts[i]!);
      const hi = Math.min(end, starts[i]! + hostByteLength(p));
      if (lo < hi) readHostBytes(p, dst.subarray(lo - from, hi - from), lo - starts[i]!);
    });
  };
  const extents = () => {
    const runs = parts.map(fileExtentsOf);
    return runs.every((r) => r !== null) ? runs.flat() : null;
  };
  return new LazyHostTensor(name, shape, dtype, total, read, extents);
}
