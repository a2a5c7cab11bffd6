import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** Where EXAONE 3's checkpoints keep each of the Llama stack's tensors (its remote code's module names). */
const EXAONE_NAMES: readonly [llama: RegExp, exaone: string][] = [
  [/^model\.embed_tokens\./, 'transformer.wte.'],
  [/^model\.norm\./, 'transformer.ln_f.'],
  [/^model\.layers\.(\d+)\.input_layernorm\./, 'transformer.h.$1.ln_1.'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\./, 'transformer.h.$1.ln_2.'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\./, 'transformer.h.$1.attn.attention.out_proj.'],
  [/^model\.layers\.(\d+)\.self_attn\./, 'transformer.h.$1.attn.attention.'],
  [/^model\.layers\.(\d+)\.mlp\.gate_proj\./, 'transformer.h.$1.mlp.c_fc_0.'],
  [/^model\.layers\.(\d+)\.mlp\.up_proj\./, 'transformer.h.$1.mlp.c_fc_1.'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\./, 'transformer.h.$1.mlp.c_proj.'],
];

/** A Llama stack tensor's name in an EXAONE 3 checkpoint. */
export function exaoneName(name: string): string {
  const rule = EXAONE_NAMES.find(([llama]) => llama.test(name));
  return rule ? name.replace(rule[0], rule[1]) : name;
}

/**
 * EXAONE 3.0, 3.5 and EXAONE Deep (ExaoneForCausalLM, remote code): the Llama stack under GPT-2-style module names
 * (`transformer.h.N.attn.attention.q_proj`, `mlp.c_fc_0` for the gate and `c_fc_1` for up).
 */
export const exaone: Architecture = {
  names: ['ExaoneForCausalLM'],
  modelTypes: ['exaone'],
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false }, cfg, w.renamed(exaoneName), backend, options),
};
