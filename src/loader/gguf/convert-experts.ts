import { encodeAs } from '../../primitives/float-bits.ts';
import { type DType, toFloat32 } from '../../primitives/host-tensor.ts';
import { UserError } from '../../util/errors.ts';
import type { CheckpointWeights } from '../fp8-weights.ts';
import { expertCountOf, type ModelConfig } from '../hf-config.ts';
import { type GgufValue, gguf } from './format.ts';
import { type ExpertParts, expertPartsOf } from './tensor-names.ts';
import type { GgufTensorOut } from './write.ts';

type Projection = keyof ExpertParts;

/** One expert's matrix within a checkpoint tensor: the whole tensor, or rows [from, from + count) of expert `e`'s slice. */
interface ExpertSlice {
  name: string;
  expert?: number;
  rows?: { from: number; count: number };
}

/** Whether llama.cpp renormalises the top-k weights of an architecture's routers (its build_moe_ffn's norm_w). */
const NORMALISES_TOP_K: Record<string, boolean> = {
  llama: true,
  granitemoe: true,
  qwen3moe: true,
  qwen2moe: false,
  olmoe: false,
};

/** The GGUF architectures pagoda writes mixture-of-experts files of. */
export const MOE_ARCHS = new Set(Object.keys(NORMALISES_TOP_K));

/**
 * A MoE model's `{arch}.expert_*` keys, refusing what llama.cpp's architecture cannot express: dense layers among the
 * sparse ones, or a top-k renormalisation it does not do.
 */
export function expertMetadata(cfg: ModelConfig, arch: string): [string, GgufValue][] {
  const raw = cfg.raw;
  const experts = expertCountOf(cfg);
  const sparseEveryLayer =
    (raw.decoder_sparse_step ?? 1) === 1 && (!Array.isArray(raw.mlp_only_layers) || raw.mlp_only_layers.length === 0);
  if (!sparseEveryLayer) {
    throw new UserError(
      `config.json: decoder_sparse_step ${JSON.stringify(raw.decoder_sparse_step ?? 1)} / mlp_only_layers ${JSON.stringify(raw.mlp_only_layers ?? [])} cannot be written to GGUF (llama.cpp's ${arch} makes every layer sparse)`,
    );
  }
  const normalises = NORMALISES_TOP_K[arch]!;
  // Mixtral and Granite renormalise whatever the config says; the Qwen families and OLMoE by norm_topk_prob.
  const says = arch === 'llama' || arch === 'granitemoe' ? true : raw.norm_topk_prob === true;
  if (says !== normalises) {
    throw new UserError(
      `config.json: norm_topk_prob ${JSON.stringify(raw.norm_topk_prob ?? false)} cannot be written to GGUF (llama.cpp's ${arch} ${normalises ? 'always renormalises' : 'never renormalises'} the top-k weights)`,
    );
  }
  const keys: [string, GgufValue][] = [
    ['expert_count', gguf.u32(experts)],
    ['expert_used_count', gguf.u32(Number(raw.num_experts_per_tok))],
  ];
  if (typeof raw.moe_intermediate_size === 'number') {
    keys.push(['expert_feed_forward_length', gguf.u32(raw.moe_intermediate_size)]);
  }
  const shared = raw.shared_expert_intermediate_size ?? raw.shared_intermediate_size;
  if (typeof shared === 'number' && shared > 0) keys.push(['expert_shared_feed_forward_length', gguf.u32(shared)]);
  return keys;
}

/** A layer's experts as the checkpoint holds them: each projection's slices, expert by expert. */
type LayerExperts = Map<Projection, ExpertSlice[]>;

const PER_EXPERT = /^(?:model\.)?layers\.(\d+)\.(?:mlp|block_sparse_moe)\.experts\.(\d+)\.(\w+)\.weight$/;
/** transformers 5's fused experts and Granite's: gate and up in one `[E, 2I, H]` tensor (gate first), down apart. */
const FUSED =
  /^(?:model\.)?layers\.(\d+)\.(?:mlp\.experts\.(gate_up_proj|down_proj)|block_sparse_moe\.(input_linear|output_linear)\.weight)$/;
/** Granite's router, which llama.cpp names as every other router. */
const GRANITE_ROUTER = /^(?:model\.)?layers\.(\d+)\.block_sparse_moe\.router\.layer\.weight$/;
/** GraniteMoeShared's shared expert: gate and up fused in `input_linear` (gate first), down as `output_linear`. */
const GRANITE_SHARED = /^(?:model\.)?layers\.(\d+)\.shared_mlp\.(input|output)_linear\.weight$/;

/**
 * A MoE checkpoint's expert tensors as llama.cpp's converter writes them: each layer's experts stacked into
 * `blk.N.ffn_{gate,up,down}_exps.weight` `[E, rows, cols]`, from one tensor per expert and projection or from fused
 * ones (whose gate and up halves are split apart); Granite's router as `blk.N.ffn_gate_inp.weight` and
 * GraniteMoeShared's shared expert as `ffn_{gate,up,down}_shexp`. `names` keeps
 * the checkpoint's other tensors, for the per-tensor path.
 */
export function stackedExperts(
  arch: string,
  cfg: ModelConfig,
  source: CheckpointWeights,
  names: readonly string[],
  type: DType,
): { tensors: GgufTensorOut[]; names: string[] } {
  const parts = expertPartsOf(arch);
  const projectionOf = new Map(Object.entries(parts).map(([p, hf]) => [hf, p as Projection]));
  const layers = new Map<number, LayerExperts>();
  const slices = (layer: number, p: Projection) => {
    const experts = layers.get(layer) ?? new Map<Projection, ExpertSlice[]>();
    layers.set(layer, experts);
    const list = experts.get(p) ?? [];
    experts.set(p, list);
    return list;
  };
  const tensors: GgufTensorOut[] = [];
  const rest: string[] = [];
  for (const name of names) {
    const one = PER_EXPERT.exec(name);
    const fused = FUSED.exec(name);
    const router = GRANITE_ROUTER.exec(name);
    const shared = GRANITE_SHARED.exec(name);
    if (one) {
      const p = projectionOf.get(one[3]!);
      if (!p) throw new UserError(`${name}: no llama.cpp tensor name for it in a ${arch} GGUF file`);
      slices(Number(one[1]), p)[Number(one[2])] = { name };
    } else if (fused) {
      const [E, rows] = source.describe(name).shape as [number, number, number];
      const layer = Number(fused[1]);
      if ((fused[2] ?? fused[3]) === 'down_proj' || fused[3] === 'output_linear') {
        for (let e = 0; e < E; e++) slices(layer, 'down')[e] = { name, expert: e };
      } else {
        const half = rows / 2;
        for (let e = 0; e < E; e++) {
          slices(layer, 'gate')[e] = { name, expert: e, rows: { from: 0, count: half } };
          slices(layer, 'up')[e] = { name, expert: e, rows: { from: half, count: half } };
        }
      }
    } else if (router) {
      tensors.push(plain(`blk.${router[1]}.ffn_gate_inp.weight`, source, name, type));
    } else if (shared) {
      const blk = `blk.${shared[1]}`;
      if (shared[2] === 'output') tensors.push(plain(`${blk}.ffn_down_shexp.weight`, source, name, type));
      else tensors.push(...halves(`${blk}.ffn_gate_shexp.weight`, `${blk}.ffn_up_shexp.weight`, source, name, type));
    } else {
      rest.push(name);
    }
  }
  for (const [layer, experts] of layers) {
    for (const p of ['gate', 'up', 'down'] as const) {
      tensors.push(stacked(`blk.${layer}.ffn_${p}_exps.weight`, source, experts.get(p) ?? [], cfg, type));
    }
  }
  return { tensors, names: rest };
}

function plain(name: string, source: CheckpointWeights, hf: string, type: DType): GgufTensorOut {
  const shape = source.describe(hf).shape;
  return { name, shape, dtype: type, bytes: () => encodeAs(toFloat32(source.get(hf)), type) };
}

/** A `[2n, cols]` matrix's first n rows and last n rows as two tensors. */
function halves(first: string, second: string, source: CheckpointWeights, hf: string, type: DType): GgufTensorOut[] {
  const [rows, cols] = source.describe(hf).shape as [number, number];
  const half = (from: number): GgufTensorOut => ({
    name: from === 0 ? first : second,
    shape: [rows / 2, cols],
    dtype: type,
    bytes: () => encodeAs(toFloat32(source.get(hf)).subarray(from * cols, (from + rows / 2) * cols), type),
  });
  return [half(0), half(rows / 2)];
}

/** One stacked tensor: every expert's slice, in `type`, one after another. */
function stacked(
  name: string,
  source: CheckpointWeights,
  slices: readonly ExpertSlice[],
  cfg: ModelConfig,
  type: DType,
): GgufTensorOut {
  const experts = expertCountOf(cfg);
  if (slices.length !== experts || slices.some((s) => !s)) {
    throw new UserError(`${name}: the checkpoint holds ${slices.filter(Boolean).length} of its ${experts} experts`);
  }
  // Each expert's [rows, cols]: a per-expert tensor's shape, or a fused one's past its expert dimension, cut to a half.
  const first = slices[0]!;
  const stored = source.describe(first.name).shape;
  const [storedRows, cols] = (first.expert === undefined ? stored : stored.slice(1)) as [number, number];
  const rows = first.rows?.count ?? storedRows;
  return {
    name,
    shape: [experts, rows, cols],
    dtype: type,
    bytes: () => {
      const all = new Float32Array(experts * rows * cols);
      // A fused tensor holds every expert: read once for all of them.
      const read = new Map<string, Float32Array>();
      for (const [e, s] of slices.entries()) {
        const values = read.get(s.name) ?? toFloat32(source.get(s.name));
        read.set(s.name, values);
        const perExpert = s.expert === undefined ? rows : source.describe(s.name).shape[1]!;
        const from = ((s.expert ?? 0) * perExpert + (s.rows?.from ?? 0)) * cols;
        all.set(values.subarray(from, from + rows * cols), e * rows * cols);
      }
      return encodeAs(all, type);
    },
  };
}
