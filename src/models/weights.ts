import type { Backend, HostTensor, ShardSpec, Tensor } from '../backend/backend.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import { isQuantType } from '../primitives/ggml-types.ts';
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
    /** Applied to each stored tensor before it is loaded (`--quantization`, see quantize-at-load.ts). */
    private readonly convert: (h: HostTensor) => HostTensor = (h) => h,
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

  /**
   * Loads a checked tensor onto the backend; `transpose` for weights stored `[in, out]` (GPT-2's Conv1D), `shard` for
   * how tensor-parallel ranks split it.
   */
  load(name: string, shape: readonly number[], opts?: { transpose?: boolean; shard?: ShardSpec }): Tensor {
    const h = this.host(name, shape);
    return this.backend.loadWeight(opts?.transpose ? h : this.convert(h), opts);
  }

  /**
   * Loads stored tensors concatenated along dim 0 as one weight (q/k/v or gate/up packed so one linear() computes
   * them all); each part is checked against its own shape, and all must share the stored dtype, except quantized
   * parts (rows of blocks), which the backend stacks whatever their types. `shape`, when given, is the packed
   * weight's (same element count): experts' matrices stacked as `[E, rows, cols]`. `shard`: how tensor-parallel ranks
   * split the packed weight (its parts' rows each split on their own).
   */
  loadPacked(
    parts: readonly { name: string; shape: readonly number[] }[],
    shape?: readonly number[],
    shard?: ShardSpec,
  ): Tensor {
    const hosts = parts.map((p) => this.convert(this.host(p.name, p.shape)));
    const first = hosts[0]!;
    const mixedQuant = hosts.some((h) => h.dtype !== first.dtype) && hosts.every((h) => isQuantType(h.dtype));
    for (const h of hosts) {
      if (h.dtype !== first.dtype && !mixedQuant) {
        throw new UserError(
          `${this.dir}: tensors ${first.name} (${first.dtype}) and ${h.name} (${h.dtype}) are packed into one weight and must share a dtype`,
        );
      }
      if (h.shape.length !== first.shape.length || h.shape.some((d, i) => i > 0 && d !== first.shape[i])) {
        throw new Error(
          `packed weight: ${h.name} ${fmt(h.shape)} and ${first.name} ${fmt(first.shape)} differ past dim 0`,
        );
      }
    }
    if (mixedQuant) return this.backend.loadStacked(hosts);
    const bytes = new Uint8Array(hosts.reduce((a, h) => a + h.bytes.byteLength, 0));
    let offset = 0;
    for (const h of hosts) {
      bytes.set(h.bytes, offset);
      offset += h.bytes.byteLength;
    }
    const rows = hosts.reduce((a, h) => a + h.shape[0]!, 0);
    const packed = [rows, ...first.shape.slice(1)];
    const size = (dims: readonly number[]) => dims.reduce((a, d) => a * d, 1);
    if (shape && size(shape) !== size(packed)) throw new Error(`packed weight: ${fmt(packed)} cannot be ${fmt(shape)}`);
    const name = hosts.map((h) => h.name).join(' + ');
    return this.backend.loadWeight({ name, shape: [...(shape ?? packed)], dtype: first.dtype, bytes }, { shard });
  }
}
