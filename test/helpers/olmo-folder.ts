import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/loader/safetensors.ts';
import { mulberry32 } from '../../src/util/random.ts';

const HIDDEN = 64;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 16;
const FF = 160;
const LAYERS = 4;
const VOCAB = 1024;

/**
 * A tiny OLMo 2 (or, `generation` 3, OLMo 3: a window of 8 on three layers of every four) folder with seeded random
 * weights, every norm's weight random too so a misplaced one shows, and the tokenizer and golden prompts of the fixture
 * at `tokenizerFixture` (a 1024-piece vocabulary: the prompts are token sequences to teacher-force, not its outputs).
 */
export function writeTinyOlmoFolder(out: string, generation: 2 | 3, tokenizerFixture: string): string {
  mkdirSync(out, { recursive: true });
  const random = mulberry32(2000 + generation);
  const values = (n: number, around: number, spread: number) =>
    Float32Array.from({ length: n }, () => around + spread * (2 * random() - 1));
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  const add = (name: string, shape: number[], around = 0, spread = 0.35) =>
    tensors.push({
      name,
      shape,
      data: values(
        shape.reduce((a, d) => a * d, 1),
        around,
        spread,
      ),
    });
  add('model.embed_tokens.weight', [VOCAB, HIDDEN], 0, 1);
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.self_attn.q_proj.weight`, [HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.k_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.v_proj.weight`, [KV_HEADS * HEAD_DIM, HIDDEN]);
    add(`${p}.self_attn.o_proj.weight`, [HIDDEN, HEADS * HEAD_DIM]);
    add(`${p}.self_attn.q_norm.weight`, [HEADS * HEAD_DIM], 1, 0.3);
    add(`${p}.self_attn.k_norm.weight`, [KV_HEADS * HEAD_DIM], 1, 0.3);
    add(`${p}.post_attention_layernorm.weight`, [HIDDEN], 1, 0.3);
    add(`${p}.mlp.gate_proj.weight`, [FF, HIDDEN]);
    add(`${p}.mlp.up_proj.weight`, [FF, HIDDEN]);
    add(`${p}.mlp.down_proj.weight`, [HIDDEN, FF]);
    add(`${p}.post_feedforward_layernorm.weight`, [HIDDEN], 1, 0.3);
  }
  add('model.norm.weight', [HIDDEN], 1, 0.3);
  add('lm_head.weight', [VOCAB, HIDDEN]);
  writeFileSync(join(out, 'model.safetensors'), encodeSafetensors(tensors));
  const config: Record<string, unknown> = {
    architectures: [generation === 2 ? 'Olmo2ForCausalLM' : 'Olmo3ForCausalLM'],
    model_type: generation === 2 ? 'olmo2' : 'olmo3',
    vocab_size: VOCAB,
    hidden_size: HIDDEN,
    intermediate_size: FF,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-6,
    rope_theta: 500000,
    tie_word_embeddings: false,
    hidden_act: 'silu',
    torch_dtype: 'float32',
    bos_token_id: 1,
    eos_token_id: 2,
  };
  if (generation === 3) {
    config.sliding_window = 8;
    config.layer_types = ['sliding_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
  }
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'golden.json']) {
    copyFileSync(join(tokenizerFixture, f), join(out, f));
  }
  return out;
}
