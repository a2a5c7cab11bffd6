import type { HostTensor } from './host-tensor.ts';

/** Copies bytes `[from, from + dst.length)` of a tensor into `dst`. */
export type ByteReader = (dst: Uint8Array, from: number) => void;

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
  #read: Uint8Array | null = null;

  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: HostTensor['dtype'],
    byteLength: number,
    reader: ByteReader,
  ) {
    this.#byteLength = byteLength;
    this.#reader = reader;
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

/** Tensors laid end to end as one (packed q/k/v, gate/up), each part read only when its range is asked for. */
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
  return new LazyHostTensor(name, shape, dtype, total, (dst, from) => {
    const end = from + dst.length;
    parts.forEach((p, i) => {
      const lo = Math.max(from, starts[i]!);
      const hi = Math.min(end, starts[i]! + hostByteLength(p));
      if (lo < hi) readHostBytes(p, dst.subarray(lo - from, hi - from), lo - starts[i]!);
    });
  });
}
