import type { Backend, HostTensor, Tensor, WeightLoadOptions } from '../backend/backend.ts';
import type { ShardSpec } from '../backend/shard-spec.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import { encodeAs } from '../primitives/float-bits.ts';
import { isQuantType } from '../primitives/ggml-types.ts';
import { toFloat32 } from '../primitives/host-tensor.ts';
import { concatHostTensors } from '../primitives/lazy-tensor.ts';
import { UserError } from '../util/errors.ts';
import type { LoadHook } from './quantize-at-load.ts';

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
    private readonly convert: LoadHook<HostTensor> = (h) => h,
    /** `--quantization fp8`: the tensors the backend is asked to quantize to FP8 (quantize-at-load.ts `fp8AtLoad`). */
    private readonly fp8?: LoadHook<boolean>,
  ) {
    if (fp8 && !backend.fp8Weights) {
      throw new Error(`${dir}: FP8 weights asked of the ${backend.name} backend, which has none`);
    }
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  /**
   * The same weights asked for by other names: `stored` maps a name the model asks for to the checkpoint's (a family
   * that stores the Llama stack under its own names, as EXAONE 3's remote code does).
   */
  renamed(stored: (name: string) => string): ModelWeights {
    const s = this.source;
    const source: WeightSource = {
      names: () => s.names(),
      has: (name) => s.has(stored(name)),
      get: (name) => s.get(stored(name)),
      close: () => {},
    };
    return new ModelWeights(source, this.backend, this.dir, this.convert, this.fp8);
  }

  /** A stored tensor's shape, unchecked (for errors that say what a file has); undefined when it has none. */
  storedShape(name: string): readonly number[] | undefined {
    return this.has(name) ? this.source.get(name).shape : undefined;
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
    if (opts?.transpose) return this.backend.loadWeight(h, opts);
    const c = this.convert(h, name);
    return this.backend.loadWeight(c, this.fp8?.(c, name) ? { ...opts, quantize: 'fp8' } : opts);
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
    const hosts = sameFp8Storage(parts.map((p) => this.convert(this.host(p.name, p.shape), p.name)));
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
    if (mixedQuant) return this.backend.loadStacked(hosts, shape);
    const rows = hosts.reduce((a, h) => a + h.shape[0]!, 0);
    const packed = [rows, ...first.shape.slice(1)];
    const size = (dims: readonly number[]) => dims.reduce((a, d) => a * d, 1);
    if (shape && size(shape) !== size(packed)) throw new Error(`packed weight: ${fmt(packed)} cannot be ${fmt(shape)}`);
    const name = hosts.map((h) => h.name).join(' + ');
    const rowScales = first.dtype === 'f8_e4m3' ? concatScales(hosts) : undefined;
    const fp8 = !shape && this.fp8?.(first, parts[0]!.name);
    const opts: WeightLoadOptions = { shard, ...(fp8 ? { quantize: 'fp8' } : {}) };
    const whole = concatHostTensors(name, shape ?? packed, first.dtype, hosts);
    // FP8 codes travel with their row scales as a plain tensor; everything else is read from the files when uploaded.
    return this.backend.loadWeight(rowScales ? { ...whole, rowScales } : whole, opts);
  }
}

/**
 * Parts of one packed weight as one storage: an FP8 checkpoint's e4m3 parts packed with float parts (a layer its
 * scheme left unquantized) are dequantized to the float parts' dtype.
 */
function sameFp8Storage(hosts: HostTensor[]): HostTensor[] {
  const float = hosts.find((h) => h.dtype !== 'f8_e4m3');
  if (!float || hosts.every((h) => h.dtype !== 'f8_e4m3')) return hosts;
  if (isQuantType(float.dtype) || float.dtype === 'f8_e4m3') throw new Error(`${float.name}: packed with FP8 parts`);
  const dtype = float.dtype;
  const decode = (h: HostTensor) => ({ name: h.name, shape: h.shape, dtype, bytes: encodeAs(toFloat32(h), dtype) });
  return hosts.map((h) => (h.dtype === 'f8_e4m3' ? decode(h) : h));
}

/** The row scales of packed `f8_e4m3` parts, in their order. */
function concatScales(hosts: readonly HostTensor[]): Float32Array {
  const out = new Float32Array(hosts.reduce((a, h) => a + h.rowScales!.length, 0));
  let offset = 0;
  for (const h of hosts) {
    out.set(h.rowScales!, offset);
    offset += h.rowScales!.length;
  }
  return out;
}
