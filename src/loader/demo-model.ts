import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pagodaHome } from '../util/paths.ts';
import { mulberry32 } from '../util/random.ts';
import { bpeModelJson } from './bpe-model-json.ts';
import { encodeSafetensors } from './safetensors.ts';

/** The name under which the CLI and server offer the built-in model. */
export const DEMO_MODEL_NAME = 'demo';

export const DEMO_MODEL_WARNING =
  'The demo model has random weights: it exercises the whole engine but produces meaningless text. ' +
  'Use a real model for real answers.';

/** Bump when anything generated below changes, so cached copies are rebuilt. */
const DEMO_VERSION = 2;
const VERSION_FILE = '.pagoda-demo-version';
const SEED = 0x9a60da;

const BYTE_TOKENS = 256;
const BOS_ID = 256;
const EOS_ID = 257;

/** A Llama model of about 15M parameters (head_dim 64, GQA 3:1) over a byte-level vocabulary. */
export const DEMO_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: BYTE_TOKENS + 2,
  hidden_size: 384,
  intermediate_size: 1280,
  num_hidden_layers: 8,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  head_dim: 64,
  hidden_act: 'silu',
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  attention_bias: false,
  mlp_bias: false,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  bos_token_id: BOS_ID,
  eos_token_id: EOS_ID,
  pretraining_tp: 1,
  use_cache: true,
  torch_dtype: 'float32',
  transformers_version: '4.46.0',
} as const;

const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** FNV-1a, to give every tensor its own stream (one tensor can be regenerated without the rest). */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Uniform values with the given standard deviation (uniform, not normal: no transcendental functions). */
function randomTensor(
  name: string,
  shape: number[],
  std: number,
): { name: string; shape: number[]; data: Float32Array } {
  const next = mulberry32(hashName(name) ^ SEED);
  const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
  const half = std * Math.sqrt(3);
  for (let i = 0; i < data.length; i++) data[i] = (next() * 2 - 1) * half;
  return { name, shape, data };
}

function ones(name: string, n: number) {
  return { name, shape: [n], data: new Float32Array(n).fill(1) };
}

/** The demo model's tensors in Hugging Face Llama naming. */
export function demoWeights(): { name: string; shape: number[]; data: Float32Array }[] {
  const c = DEMO_CONFIG;
  const h = c.hidden_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const std = c.initializer_range;
  // Unit-scale embeddings keep each token's identity dominant in the residual stream, so the output depends on the
  // input (with 0.02, as transformers initializes, every prompt collapses to the same few tokens).
  const out = [randomTensor('model.embed_tokens.weight', [c.vocab_size, h], 1)];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      ones(`${p}.input_layernorm.weight`, h),
      randomTensor(`${p}.self_attn.q_proj.weight`, [q, h], std),
      randomTensor(`${p}.self_attn.k_proj.weight`, [kv, h], std),
      randomTensor(`${p}.self_attn.v_proj.weight`, [kv, h], std),
      randomTensor(`${p}.self_attn.o_proj.weight`, [h, q], std),
      ones(`${p}.post_attention_layernorm.weight`, h),
      randomTensor(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, h], std),
      randomTensor(`${p}.mlp.up_proj.weight`, [c.intermediate_size, h], std),
      randomTensor(`${p}.mlp.down_proj.weight`, [h, c.intermediate_size], std),
    );
  }
  // Logits with a standard deviation of about 2 (varied output, no near-ties for greedy decoding to flip on) for
  // printable ASCII and newline; the other bytes are damped so the meaningless text is at least readable.
  const lmHead = randomTensor('lm_head.weight', [c.vocab_size, h], 2 / Math.sqrt(h));
  for (let v = 0; v < c.vocab_size; v++) {
    if ((v >= 0x20 && v < 0x7f) || v === 0x0a) continue;
    const row = lmHead.data.subarray(v * h, (v + 1) * h);
    for (let i = 0; i < h; i++) row[i] = (row[i] as number) * 0.1;
  }
  out.push(ones('model.norm.weight', h), lmHead);
  return out;
}

/** GPT-2's byte-to-character map, which makes every byte a printable vocabulary entry. */
function byteToChar(): string[] {
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    chars.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return chars;
}

/** A byte-level BPE with no merges: one token per UTF-8 byte (id = byte value), plus <s> and </s>. */
export function demoTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteToChar().forEach((ch, b) => {
    vocab[ch] = b;
  });
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(BOS_ID, '<s>'), special(EOS_ID, '</s>')],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [BOS_ID], tokens: ['<s>'] } },
    },
    decoder: byteLevel,
    model: bpeModelJson(vocab, []),
  };
}

const README = `# pagoda demo model

This model was generated by pagoda on first use. It has RANDOM WEIGHTS: it runs the whole engine
(tokenizer, chat template, paged KV cache, batching, sampling) but produces meaningless text.

- Architecture: LlamaForCausalLM, ${DEMO_CONFIG.num_hidden_layers} layers, hidden ${DEMO_CONFIG.hidden_size}, ${DEMO_CONFIG.num_attention_heads} heads, ${DEMO_CONFIG.num_key_value_heads} KV heads, about 15M parameters, float32.
- Tokenizer: byte-level (one token per UTF-8 byte) plus <s> and </s>.
- Weights: seeded uniform random values, identical on every machine; the output layer favours printable ASCII.
`;

function writeDemoModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const json = (name: string, value: unknown) => writeFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  json('config.json', DEMO_CONFIG);
  json('generation_config.json', { bos_token_id: BOS_ID, eos_token_id: EOS_ID, transformers_version: '4.46.0' });
  json('tokenizer.json', demoTokenizerJson());
  json('tokenizer_config.json', {
    bos_token: '<s>',
    eos_token: '</s>',
    clean_up_tokenization_spaces: false,
    model_max_length: DEMO_CONFIG.max_position_embeddings,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: CHAT_TEMPLATE,
  });
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(demoWeights()));
  writeFileSync(join(dir, 'README.md'), README);
  // Written last: its presence marks a complete folder.
  writeFileSync(join(dir, VERSION_FILE), `${DEMO_VERSION}\n`);
}

function isCurrent(dir: string): boolean {
  const marker = join(dir, VERSION_FILE);
  return existsSync(marker) && readFileSync(marker, 'utf8').trim() === String(DEMO_VERSION);
}

/**
 * Returns the demo model's folder (`$PAGODA_HOME/demo`), generating it on first use (saying so through `note`). The
 * folder is written under a temporary name and renamed into place, so concurrent first uses never see a
 * half-written model.
 */
export function ensureDemoModel(note?: (line: string) => void): string {
  const home = pagodaHome();
  const dir = join(home, DEMO_MODEL_NAME);
  if (isCurrent(dir)) return dir;
  note?.(`writing the built-in demo model to ${dir} (first use)`);
  const unique = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const tmp = join(home, `.${DEMO_MODEL_NAME}-tmp-${unique}`);
  try {
    writeDemoModel(tmp);
    if (existsSync(dir) && !isCurrent(dir)) {
      // An older or broken copy: move it aside (another process may have done so already).
      const stale = join(home, `.${DEMO_MODEL_NAME}-stale-${unique}`);
      try {
        renameSync(dir, stale);
      } catch {
        // Another process moved it first.
      }
      rmSync(stale, { recursive: true, force: true });
    }
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another process won the race; its folder is as good as ours.
      if (!isCurrent(dir)) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
