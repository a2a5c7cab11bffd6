import type { MoeSpec, MoeWeights } from '../backend/moe-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import type { ModelWeights } from './weights.ts';

/** What tells the mixture-of-experts families apart: tensor names, routing rule, shared expert, config defaults. */
export interface MoeFamily {
  /** The block's module in checkpoints saved per expert (transformers 5 names it `mlp` in its fused layout). */
  block: 'mlp' | 'block_sparse_moe';
  /** Per-expert projection names: gate, up, down. */
  expertNames: readonly [gate: string, up: string, down: string];
  /** Mixtral renormalises the top-k weights always; the Qwen families when `norm_topk_prob` says so. */
  alwaysNormTopK: boolean;
  /**
   * A shared expert every token also goes through: the config key of its width (0: none), and whether
   * sigmoid(shared_expert_gate(x)) scales its output (Qwen2-MoE) or nothing does (GraniteMoeShared).
   */
  sharedExpert?: { widthKey: string; gated: boolean };
  /** transformers' config defaults for the fields a config.json may leave out. */
  defaults: { numExperts: number; topK: number; sharedWidth?: number };
}

export const QWEN_MOE: MoeFamily = {
  block: 'mlp',
  expertNames: ['gate_proj', 'up_proj', 'down_proj'],
  alwaysNormTopK: false,
  defaults: { numExperts: 128, topK: 8 },
};

export const QWEN2_MOE: MoeFamily = {
  ...QWEN_MOE,
  sharedExpert: { widthKey: 'shared_expert_intermediate_size', gated: true },
  defaults: { numExperts: 60, topK: 4, sharedWidth: 5632 },
};

export const MIXTRAL: MoeFamily = {
  block: 'block_sparse_moe',
  expertNames: ['w1', 'w3', 'w2'],
  alwaysNormTopK: true,
  defaults: { numExperts: 8, topK: 2 },
};

/** OLMoE: Qwen's names and routing, transformers' OlmoeConfig defaults. */
export const OLMOE: MoeFamily = { ...QWEN_MOE, defaults: { numExperts: 64, topK: 8 } };

/**
 * Granite 3 MoE (Hugging Face's fused experts, or llama.cpp's stacked ones read under Qwen's per-expert names): a
 * softmax over the top-k router logits, Mixtral's renormalised weights; GraniteMoeShared adds an ungated shared
 * expert (`shared_mlp`, gate and up fused as the experts are).
 */
export const GRANITE_MOE: MoeFamily = {
  ...QWEN_MOE,
  alwaysNormTopK: true,
  sharedExpert: { widthKey: 'shared_intermediate_size', gated: false },
  defaults: { numExperts: 8, topK: 2, sharedWidth: 0 },
};

/** One layer's sparse MLP: its weights and routing, run by `Backend.moe`. */
export interface MoeBlock {
  weights: MoeWeights;
  spec: MoeSpec;
}

/** The sizes and routing a config gives a family's MoE layers. */
export interface MoeConfig {
  numExperts: number;
  spec: MoeSpec;
  /** Each expert's intermediate width (`moe_intermediate_size`; Mixtral's experts use `intermediate_size`). */
  expertWidth: number;
  /** The shared expert's width, 0 without one. */
  sharedWidth: number;
  /** Whether layer i is sparse: Qwen's `mlp_only_layers` and `decoder_sparse_step` keep some layers dense. */
  isSparse(layer: number): boolean;
}

export function moeConfigOf(family: MoeFamily, cfg: ModelConfig): MoeConfig {
  const raw = cfg.raw;
  const int = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new UserError(`config.json: "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const numExperts = int(
    raw.num_experts === undefined ? 'num_local_experts' : 'num_experts',
    family.defaults.numExperts,
  );
  const topK = int('num_experts_per_tok', family.defaults.topK);
  if (numExperts > 0 && (topK < 1 || topK > numExperts)) {
    throw new UserError(`config.json: "num_experts_per_tok" is ${topK}, expected 1 to the ${numExperts} experts`);
  }
  const step = int('decoder_sparse_step', 1);
  const denseLayers = Array.isArray(raw.mlp_only_layers) ? (raw.mlp_only_layers as unknown[]) : [];
  return {
    numExperts,
    spec: { topK, normTopK: family.alwaysNormTopK || raw.norm_topk_prob === true },
    expertWidth: int('moe_intermediate_size', cfg.intermediateSize),
    sharedWidth: family.sharedExpert ? int(family.sharedExpert.widthKey, family.defaults.sharedWidth ?? 0) : 0,
    isSparse: (layer) => numExperts > 0 && step > 0 && (layer + 1) % step === 0 && !denseLayers.includes(layer),
  };
}

/**
 * Loads the sparse MLP of the layer named `prefix` (e.g. `model.layers.3`), its experts stacked (and its shared
 * expert, if any), from any layout:
 * one tensor per expert and projection (as published checkpoints store them), transformers 5's fused
 * `mlp.experts.gate_up_proj` `[E, 2I, H]` and `mlp.experts.down_proj` `[E, H, I]`, or Granite MoE's the same way
 * fused as `block_sparse_moe.input_linear` and `output_linear`, its router `block_sparse_moe.router.layer`.
 */
export function loadMoeBlock(family: MoeFamily, moe: MoeConfig, cfg: ModelConfig, w: ModelWeights, prefix: string) {
  const { numExperts: E, expertWidth: I, sharedWidth: Is } = moe;
  const H = cfg.hiddenSize;
  const fused = `${prefix}.mlp.experts`;
  const granite = `${prefix}.block_sparse_moe`;
  let weights: MoeWeights;
  if (w.has(`${granite}.input_linear.weight`)) {
    weights = {
      router: w.load(`${granite}.router.layer.weight`, [E, H]),
      gateUp: w.load(`${granite}.input_linear.weight`, [E, 2 * I, H]),
      down: w.load(`${granite}.output_linear.weight`, [E, H, I]),
    };
  } else if (w.has(`${fused}.gate_up_proj`)) {
    weights = {
      router: w.load(`${prefix}.mlp.gate.weight`, [E, H]),
      gateUp: w.load(`${fused}.gate_up_proj`, [E, 2 * I, H]),
      down: w.load(`${fused}.down_proj`, [E, H, I]),
    };
  } else {
    const block = `${prefix}.${family.block}`;
    const [gate, up, down] = family.expertNames;
    const expert = (e: number, proj: string, shape: number[]) => ({
      name: `${block}.experts.${e}.${proj}.weight`,
      shape,
    });
    const experts = Array.from({ length: E }, (_, e) => e);
    weights = {
      router: w.load(`${block}.gate.weight`, [E, H]),
      gateUp: w.loadPacked(
        experts.flatMap((e) => [expert(e, gate, [I, H]), expert(e, up, [I, H])]),
        [E, 2 * I, H],
      ),
      down: w.loadPacked(
        experts.map((e) => expert(e, down, [H, I])),
        [E, H, I],
      ),
    };
  }
  if (Is > 0) {
    // Qwen2-MoE's projections apart under mlp.shared_expert; GraniteMoeShared's gate and up fused in shared_mlp.
    const shared = `${prefix}.mlp.shared_expert`;
    const fusedShared = `${prefix}.shared_mlp`;
    const fused = w.has(`${fusedShared}.input_linear.weight`);
    weights.shared = {
      gateUp: fused
        ? w.load(`${fusedShared}.input_linear.weight`, [2 * Is, H])
        : w.loadPacked([
            { name: `${shared}.gate_proj.weight`, shape: [Is, H] },
            { name: `${shared}.up_proj.weight`, shape: [Is, H] },
          ]),
      down: w.load(fused ? `${fusedShared}.output_linear.weight` : `${shared}.down_proj.weight`, [H, Is]),
      gate: family.sharedExpert?.gated ? w.load(`${prefix}.mlp.shared_expert_gate.weight`, [1, H]) : undefined,
    };
  }
  return { weights, spec: moe.spec } satisfies MoeBlock;
}
