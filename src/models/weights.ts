import type { Backend, HostTensor, Tensor } from '../backend/backend.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import { UserError } from '../util/errors.ts';

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Hands a model its weights by name, checking each stored shape against the one the config implies, so a
 * mismatched checkpoint fails at load with one line instead of producing garbage.
 */
export class ModelWeights {
  constructor(
    private readonly source: WeightSource,
    private readonly backend: Backend,
    /** The model folder, named in errors. */
    private readonly dir: string,
  ) {}

  has(name: string): boolean {
    return this.source.has(name);
  }

  /** The stored tensor, which must have exactly `shape` (the on-disk layout, before any transpose). */
  host(name: string, shape: readonly number[]): HostTensor {
    if (!this.source.has(name)) {
      throw new UserError(`${this.dir}: tensor ${name} is missing (expected shape ${fmt(shape)} from config.json)`);
    }
    const t = this.source.get(name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(
        `${this.dir}: tensor ${name} has shape ${fmt(t.shape)}, expected ${fmt(shape)} from config.json`,
      );
    }
    return t;
  }

  /** Loads a checked tensor onto the backend; `transpose` for weights stored `[in, out]` (GPT-2's Conv1D). */
  load(name: string, shape: readonly number[], opts?: { transpose?: boolean }): Tensor {
    return this.backend.loadWeight(this.host(name, shape), opts);
  }
}

/** Splits a host tensor `[rows, cols]` (or a vector `[cols]`) along its last dim into parts of the given widths. */
export function splitColumns(t: HostTensor, widths: readonly number[]): HostTensor[] {
  const vector = t.shape.length === 1;
  const [rows, cols] = (vector ? [1, t.shape[0]] : t.shape) as [number, number];
  const size = t.bytes.byteLength / (rows * cols);
  let start = 0;
  return widths.map((w, p) => {
    const bytes = new Uint8Array(rows * w * size);
    for (let r = 0; r < rows; r++) {
      bytes.set(t.bytes.subarray((r * cols + start) * size, (r * cols + start + w) * size), r * w * size);
    }
    start += w;
    return { name: `${t.name}[part ${p}]`, shape: vector ? [w] : [rows, w], dtype: t.dtype, bytes };
  });
}
