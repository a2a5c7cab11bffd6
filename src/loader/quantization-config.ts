import { UserError } from '../util/errors.ts';

/**
 * How an FP8 checkpoint's scales tile a weight `[out, in]`: one scale for the whole tensor, one per output row, or
 * one per `rows x cols` block (the last blocks of a dimension may be partial).
 */
export type Fp8Layout = { kind: 'tensor' } | { kind: 'channel' } | { kind: 'block'; rows: number; cols: number };

/** What config.json's `quantization_config` says about an FP8 checkpoint's weights. */
export interface Fp8Checkpoint {
  /** The scale tensor beside each FP8 `X.weight`: `X.weight_scale_inv` (fp8 block format) or `X.weight_scale`. */
  readonly scaleSuffix: 'weight_scale_inv' | 'weight_scale';
  /** The layouts a weight's scale may have (compressed-tensors groups may differ: attention per channel, MLP per tensor). */
  readonly layouts: readonly Fp8Layout[];
  /** For the start-up line: "FP8 checkpoint (block 128x128)". */
  readonly summary: string;
}

const SUPPORTED = 'pagoda reads fp8 and compressed-tensors FP8 checkpoints, and GGUF files';

export function layoutName(l: Fp8Layout): string {
  return l.kind === 'block' ? `block ${l.rows}x${l.cols}` : `per-${l.kind}`;
}

/** An FP8 checkpoint's scale tensors: numbers about its weights (and activations and KV cache), not weights. */
export const FP8_SCALE_TENSOR = /\.(weight_scale|weight_scale_inv|input_scale|output_scale|k_scale|v_scale)$/;

/**
 * The FP8 format of a checkpoint whose config.json (at `path`) has a `quantization_config`; null when it has none.
 * Any other quantization method, or a compressed-tensors scheme that is not FP8, is one line naming it.
 */
export function parseQuantizationConfig(raw: Record<string, unknown>, path: string): Fp8Checkpoint | null {
  const q = raw.quantization_config;
  if (q === undefined || q === null) return null;
  if (typeof q !== 'object' || Array.isArray(q)) throw new UserError(`${path}: quantization_config is not an object`);
  const config = q as Record<string, unknown>;
  const method = config.quant_method;
  if (method === 'fp8') return fp8Method(config, path);
  if (method === 'compressed-tensors') return compressedTensors(config, path);
  if (method === undefined) throw new UserError(`${path}: quantization_config has no quant_method (${SUPPORTED})`);
  throw new UserError(
    `${path}: quantization_config.quant_method ${JSON.stringify(method)} is not supported (${SUPPORTED})`,
  );
}

/** `quant_method: "fp8"`: blocks of `weight_block_size` scaled by `weight_scale_inv`, else one `weight_scale` per tensor. */
function fp8Method(q: Record<string, unknown>, path: string): Fp8Checkpoint {
  if (q.fmt !== undefined && q.fmt !== 'e4m3') {
    throw new UserError(`${path}: quantization_config.fmt ${JSON.stringify(q.fmt)} is not supported (expected "e4m3")`);
  }
  const block = q.weight_block_size;
  if (block === undefined || block === null) {
    return {
      scaleSuffix: 'weight_scale',
      layouts: [{ kind: 'tensor' }],
      summary: 'FP8 checkpoint (per-tensor scales)',
    };
  }
  const layout = blockLayout(block, `${path}: quantization_config.weight_block_size`);
  return { scaleSuffix: 'weight_scale_inv', layouts: [layout], summary: `FP8 checkpoint (${layoutName(layout)})` };
}

function blockLayout(v: unknown, what: string): Fp8Layout {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((d) => Number.isInteger(d) && d > 0)) {
    throw new UserError(`${what} is ${JSON.stringify(v)}, expected two positive integers such as [128, 128]`);
  }
  return { kind: 'block', rows: v[0], cols: v[1] };
}

const FP8_FORMATS = ['float-quantized', 'naive-quantized'];

/** compressed-tensors: every config group's weights must be 8-bit floats, per tensor, per channel or per block. */
function compressedTensors(q: Record<string, unknown>, path: string): Fp8Checkpoint {
  const where = `${path}: quantization_config`;
  if (q.format !== undefined && !FP8_FORMATS.includes(q.format as string)) {
    throw new UserError(
      `${where}.format ${JSON.stringify(q.format)} is not supported (expected ${FP8_FORMATS.join(' or ')}: ${SUPPORTED})`,
    );
  }
  const sparsity = (q.sparsity_config as { format?: unknown } | null | undefined)?.format;
  if (sparsity !== undefined && sparsity !== 'dense') {
    throw new UserError(
      `${where}.sparsity_config.format ${JSON.stringify(sparsity)} is not supported (sparse weights)`,
    );
  }
  const groups = q.config_groups;
  if (typeof groups !== 'object' || groups === null || Object.keys(groups).length === 0) {
    throw new UserError(`${where}.config_groups is missing or empty (expected the groups' weight schemes)`);
  }
  const layouts: Fp8Layout[] = [];
  for (const [name, group] of Object.entries(groups as Record<string, unknown>)) {
    const w = ((group ?? {}) as Record<string, unknown>).weights as Record<string, unknown> | undefined;
    const what = `${where}.config_groups.${name}.weights`;
    if (w?.num_bits !== 8 || w.type !== 'float') {
      const got = w ? `num_bits ${w.num_bits}, type ${JSON.stringify(w.type)}` : 'missing';
      throw new UserError(
        `${what} is ${got}: only FP8 weights (num_bits 8, type "float") are supported (${SUPPORTED})`,
      );
    }
    const layout =
      w.strategy === 'tensor' || w.strategy === 'channel'
        ? ({ kind: w.strategy } as Fp8Layout)
        : w.strategy === 'block'
          ? blockLayout(w.block_structure, `${what}.block_structure`)
          : null;
    if (!layout) {
      throw new UserError(
        `${what}.strategy ${JSON.stringify(w.strategy)} is not supported (expected "tensor", "channel" or "block")`,
      );
    }
    if (!layouts.some((l) => layoutName(l) === layoutName(layout))) layouts.push(layout);
  }
  const summary = `FP8 checkpoint (compressed-tensors, ${layouts.map(layoutName).join(' / ')} scales)`;
  return { scaleSuffix: 'weight_scale', layouts, summary };
}
