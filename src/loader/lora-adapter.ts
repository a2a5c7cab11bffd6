import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type HostTensor, toFloat32 } from '../primitives/host-tensor.ts';
import { type LoraDtype, type LoraMergePool, mergeLoraRows } from '../primitives/lora-merge.ts';
import { UserError } from '../util/errors.ts';
import { openSafetensors, type WeightSource } from './safetensors.ts';

/** One adapted weight: its low-rank factors A [r, in] and B [out, r], and the scale of B A. */
interface LoraPair {
  a: HostTensor;
  b: HostTensor;
  scale: number;
}

/** A PEFT LoRA adapter folder, read: the adapted base weights by name, and the folder for messages. */
export interface LoraAdapter {
  dir: string;
  pairs: Map<string, LoraPair>;
  close(): void;
}

const PREFIX = 'base_model.model.';
const FACTOR = /^(.+)\.lora_([AB])\.weight$/;

/**
 * Reads a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors), as `peft` saves one: factors
 * for linear weights, each scaled by lora_alpha / r (/ sqrt(r) with rsLoRA; r is each factor's own rank, so a
 * rank_pattern needs nothing more). What it cannot merge is refused in one line: DoRA, embedding factors, trained
 * biases, whole modules saved beside the factors, Conv1D (fan_in_fan_out) layouts, per-module alphas.
 */
export function readLoraAdapter(dir: string): LoraAdapter {
  const configPath = join(dir, 'adapter_config.json');
  if (!existsSync(configPath)) throw new UserError(`${dir}: not a LoRA adapter folder (no adapter_config.json)`);
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    throw new UserError(
      `${configPath}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${configPath}: not valid JSON (${(err as Error).message})`);
  }
  const refuse = (what: string) => new UserError(`${configPath}: ${what}`);
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') {
    throw refuse(`peft_type is ${JSON.stringify(config.peft_type)}; only LORA adapters are supported`);
  }
  if (config.use_dora) throw refuse('use_dora: DoRA adapters are not supported (plain LoRA only)');
  if (config.fan_in_fan_out) throw refuse('fan_in_fan_out: Conv1D (GPT-2 style) adapters are not supported');
  if (config.bias !== undefined && config.bias !== 'none') {
    throw refuse(`bias is ${JSON.stringify(config.bias)}; only "none" is supported (no trained biases)`);
  }
  if (config.alpha_pattern && Object.keys(config.alpha_pattern).length > 0) {
    throw refuse('alpha_pattern: per-module alphas are not supported');
  }
  const alpha = config.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw refuse('lora_alpha: expected a number');
  const tensorsPath = join(dir, 'adapter_model.safetensors');
  if (!existsSync(tensorsPath)) {
    const bin = existsSync(join(dir, 'adapter_model.bin'));
    throw new UserError(
      `${dir}: no adapter_model.safetensors${bin ? ' (adapter_model.bin is a pickle: save the adapter with safe_serialization)' : ''}`,
    );
  }
  const weights = openSafetensors(dir, 'adapter_model.safetensors');
  try {
    const factors = new Map<string, { a?: HostTensor; b?: HostTensor }>();
    for (const name of weights.names()) {
      const m = FACTOR.exec(name);
      if (!m || !name.startsWith(PREFIX)) {
        throw new UserError(
          `${tensorsPath}: tensor ${name} is not a LoRA factor (base_model.model.<module>.lora_A/B.weight); embedding factors, DoRA magnitudes and saved modules are not supported`,
        );
      }
      const target = `${m[1]!.slice(PREFIX.length)}.weight`;
      const entry = factors.get(target) ?? {};
      entry[m[2] === 'A' ? 'a' : 'b'] = weights.get(name);
      factors.set(target, entry);
    }
    const pairs = new Map<string, LoraPair>();
    for (const [target, { a, b }] of factors) {
      if (!a || !b) throw new UserError(`${tensorsPath}: ${target} has lora_${a ? 'B' : 'A'} missing`);
      const rank = a.shape[0]!;
      if (a.shape.length !== 2 || b.shape.length !== 2 || b.shape[1] !== rank) {
        throw new UserError(
          `${tensorsPath}: ${target}'s factors have shapes A [${a.shape.join(', ')}] and B [${b.shape.join(', ')}], expected A [r, in] and B [out, r]`,
        );
      }
      pairs.set(target, { a, b, scale: alpha / (config.use_rslora ? Math.sqrt(rank) : rank) });
    }
    if (pairs.size === 0) throw new UserError(`${tensorsPath}: no LoRA factors`);
    return { dir, pairs, close: () => weights.close() };
  } catch (err) {
    weights.close();
    throw err;
  }
}

/**
 * `source` with `adapter` merged into the weights it adapts: W + scale B A, the product summed over the rank in
 * float64 in rank order, added to W in float64 and rounded once to float32, then to W's own dtype. Done when a
 * weight's bytes are first read (its shape alone reads nothing), its rows through `pool` if given. Every adapted weight
 * must be in `source`, of the factors' shape, and 16- or 32-bit (a quantized weight cannot take a merge).
 */
export function withLora(source: WeightSource, adapter: LoraAdapter, pool?: LoraMergePool): WeightSource {
  try {
    checkTargets(source, adapter);
  } catch (err) {
    adapter.close();
    throw err;
  }
  return {
    names: () => source.names(),
    has: (name) => source.has(name),
    get: (name) => {
      const pair = adapter.pairs.get(name);
      const base = source.get(name);
      if (!pair) return base;
      let merged: Uint8Array | undefined;
      return {
        name: base.name,
        shape: base.shape,
        dtype: base.dtype,
        get bytes() {
          merged ??= mergeLora(base, pair, pool);
          return merged;
        },
      };
    },
    close: () => {
      adapter.close();
      source.close();
    },
  };
}

/** Every adapted weight is in `source`, of its factors' shape, and 16- or 32-bit. */
function checkTargets(source: WeightSource, adapter: LoraAdapter): void {
  for (const [target, { a, b }] of adapter.pairs) {
    const where = join(adapter.dir, 'adapter_model.safetensors');
    if (!source.has(target))
      throw new UserError(`${where}: the adapter adapts ${target}, which the model does not have`);
    const w = source.get(target);
    if (w.shape.length !== 2 || w.shape[0] !== b.shape[0] || w.shape[1] !== a.shape[1]) {
      throw new UserError(
        `${where}: ${target} is [${w.shape.join(', ')}] in the model, but the adapter's factors make [${b.shape[0]}, ${a.shape[1]}]`,
      );
    }
    if (w.dtype !== 'f32' && w.dtype !== 'f16' && w.dtype !== 'bf16') {
      throw new UserError(
        `${where}: ${target} is stored as ${w.dtype}; a LoRA adapter merges only into 16- or 32-bit weights (load the unquantized model, then quantize with --quantization)`,
      );
    }
  }
}

/**
 * W + scale B A in W's dtype (see withLora): its rows through `pool` where one is given (split over threads), else
 * on this thread; the same bits either way (mergeLoraRows).
 */
export function mergeLora(base: HostTensor, { a, b, scale }: LoraPair, pool?: LoraMergePool): Uint8Array {
  const [rows, cols] = base.shape as [number, number];
  const rank = a.shape[0]!;
  const dtype = base.dtype as LoraDtype;
  // A pool's threads read and write the operands where they are: in shared memory.
  const memory = (bytes: number) => (pool ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const w = new Uint8Array(memory(base.bytes.byteLength));
  w.set(base.bytes);
  const fa = toFloat32(a);
  const fb = new Float64Array(memory(rows * rank * 8));
  fb.set(toFloat32(b));
  const at = new Float64Array(memory(cols * rank * 8));
  for (let k = 0; k < rank; k++) for (let i = 0; i < cols; i++) at[i * rank + k] = fa[k * cols + i]!;
  if (pool) pool.mergeRows(w, dtype, at, fb, scale, rows, cols, rank);
  else mergeLoraRows(w, dtype, at, fb, scale, cols, rank, 0, rows);
  return w;
}
