import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ggmlTypeOf } from '../../primitives/ggml-types.ts';
import { ggufWeightRole, type QuantScheme, quantTypeFor } from '../../primitives/quant/mix.ts';
import { randomBlocks } from '../../primitives/quant/random.ts';
import { UserError } from '../../util/errors.ts';
import { mulberry32 } from '../../util/random.ts';
import { expertCountOf, loadModelConfig, type ModelConfig, readJson } from '../hf-config.ts';
import { readTokenizerConfig } from '../tokenizer.ts';
import { archMetadata, GGUF_ARCH, planTensor } from './convert.ts';
import { gguf } from './format.ts';
import { ggufTokenizerMetadata } from './tokenizer-export.ts';
import { type GgufTensorOut, writeGguf } from './write.ts';

/** The GGUF architectures whose tensors decoderTensors and expertTensors list (Mixtral's is llama's). */
const DUMMY_ARCHS = new Set(['llama', 'qwen2', 'qwen3', 'qwen3moe']);

/**
 * The transformers tensors of a Llama / Qwen2 / Qwen3 decoder of this config, with their shapes (a mixture-of-experts
 * decoder's MLPs left to `expertTensors`).
 */
function decoderTensors(cfg: ModelConfig, moe: boolean): [string, number[]][] {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim: hd, vocabSize } = cfg;
  const out: [string, number[]][] = [
    ['model.embed_tokens.weight', [vocabSize, h]],
    ['model.norm.weight', [h]],
  ];
  if (!cfg.tieWordEmbeddings) out.push(['lm_head.weight', [vocabSize, h]]);
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      [`${p}input_layernorm.weight`, [h]],
      [`${p}self_attn.q_proj.weight`, [numHeads * hd, h]],
      [`${p}self_attn.k_proj.weight`, [numKvHeads * hd, h]],
      [`${p}self_attn.v_proj.weight`, [numKvHeads * hd, h]],
      [`${p}self_attn.o_proj.weight`, [h, numHeads * hd]],
      [`${p}post_attention_layernorm.weight`, [h]],
    );
    if (!moe) {
      out.push(
        [`${p}mlp.gate_proj.weight`, [f, h]],
        [`${p}mlp.up_proj.weight`, [f, h]],
        [`${p}mlp.down_proj.weight`, [h, f]],
      );
    }
    if (cfg.modelType === 'qwen2') {
      out.push(
        [`${p}self_attn.q_proj.bias`, [numHeads * hd]],
        [`${p}self_attn.k_proj.bias`, [numKvHeads * hd]],
        [`${p}self_attn.v_proj.bias`, [numKvHeads * hd]],
      );
    }
    if (cfg.modelType === 'qwen3' || cfg.modelType === 'qwen3_moe')
      out.push([`${p}self_attn.q_norm.weight`, [hd]], [`${p}self_attn.k_norm.weight`, [hd]]);
  }
  return out;
}

/**
 * Every layer's router and stacked experts as llama.cpp names them (`ffn_gate_inp`, `ffn_{gate,up,down}_exps`
 * `[E, rows, cols]`): a decoder whose every layer is sparse (archMetadata's expert keys refuse any other).
 */
function expertTensors(cfg: ModelConfig): { name: string; shape: number[] }[] {
  const E = expertCountOf(cfg);
  const I = Number(cfg.raw.moe_intermediate_size ?? cfg.intermediateSize);
  const h = cfg.hiddenSize;
  return Array.from({ length: cfg.numLayers }, (_, i) => [
    { name: `blk.${i}.ffn_gate_inp.weight`, shape: [E, h] },
    { name: `blk.${i}.ffn_gate_exps.weight`, shape: [E, I, h] },
    { name: `blk.${i}.ffn_up_exps.weight`, shape: [E, I, h] },
    { name: `blk.${i}.ffn_down_exps.weight`, shape: [E, h, I] },
  ]).flat();
}

/**
 * `pagoda quantize --load-format dummy`: a GGUF file of `scheme` with random weights for a model folder that holds
 * only config.json (the benchmark shapes), made directly as blocks (never a float copy: an 8B model's blocks take
 * about a minute), norms 1 and biases 0. The vocabulary is that of `vocabDir` (a tokenizer.json folder: a fixture
 * vocabulary) padded with placeholder tokens to the model's vocabulary size, so llama.cpp and pagoda can both load it.
 */
export function dummyGguf(
  configDir: string,
  out: string,
  scheme: QuantScheme,
  vocabDir: string,
): { tensors: number; types: Record<string, number> } {
  const cfg = loadModelConfig(configDir);
  const arch = GGUF_ARCH[cfg.architecture];
  const shared = Number(cfg.raw.shared_expert_intermediate_size ?? cfg.raw.shared_intermediate_size ?? 0);
  if (!arch || !DUMMY_ARCHS.has(arch) || shared > 0) {
    throw new UserError(
      `${join(configDir, 'config.json')}: --load-format dummy writes Llama, Mistral, Mixtral, Qwen2, Qwen3 and Qwen3-MoE shapes, not "${cfg.architecture}"${shared > 0 ? ' with a shared expert' : ''}`,
    );
  }
  const tokenizerPath = join(vocabDir, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    throw new UserError(`--vocab ${vocabDir}: no tokenizer.json there (expected a folder with a fixture vocabulary)`);
  }
  const meta = archMetadata(cfg, arch, basename(configDir), 'f32');
  const vocab = ggufTokenizerMetadata(
    readJson(tokenizerPath),
    readTokenizerConfig(vocabDir),
    [],
    cfg.vocabSize,
    tokenizerPath,
  );
  for (const [key, v] of vocab) meta.set(key, v);
  meta.set('general.file_type', gguf.u32(scheme.fileType));
  meta.set('general.quantization_version', gguf.u32(2));
  const experts = expertCountOf(cfg);
  const model = {
    numLayers: cfg.numLayers,
    gqa: cfg.numHeads / cfg.numKvHeads,
    experts,
    hasOutput: !cfg.tieWordEmbeddings,
  };
  const types: Record<string, number> = {};
  let seed = 1;
  const planned = [
    ...decoderTensors(cfg, experts > 0).map(([hf, shape]) => planTensor(arch, hf, shape, 'f32')),
    ...(experts > 0 ? expertTensors(cfg) : []),
  ];
  const tensors: GgufTensorOut[] = planned.map((p) => {
    // Matrices and expert stacks: blocks run along each row.
    const cols = p.shape.length >= 2 ? p.shape.at(-1) : undefined;
    const role = cols === undefined ? null : ggufWeightRole(p.name, { ...model, cols });
    const type = role && quantTypeFor(scheme, role);
    const count = p.shape.reduce((a, d) => a * d, 1);
    const s = seed++;
    if (!type) {
      if (role) throw new UserError(`${p.name}: width ${cols} fits no ${scheme.name} block`);
      // A router (the one matrix with no role) random as the matrices are, so tokens choose different experts;
      // norms 1, biases 0.
      const values = cols === undefined ? new Float32Array(count).fill(p.name.endsWith('.bias') ? 0 : 1) : null;
      return {
        name: p.name,
        shape: p.shape,
        dtype: 'f32',
        bytes: () => new Uint8Array((values ?? randomFloats(count, 1 / Math.sqrt(cols!), s)).buffer),
      };
    }
    const name = ggmlTypeOf(type).name;
    types[name] = (types[name] ?? 0) + 1;
    return {
      name: p.name,
      shape: p.shape,
      dtype: type,
      bytes: () => randomBlocks(type, count, 1 / Math.sqrt(cols!), s, p.name),
    };
  });
  writeGguf(out, meta, tensors);
  return { tensors: tensors.length, types };
}

/** `count` values uniform in [-scale, scale), from `seed`. */
function randomFloats(count: number, scale: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: count }, () => (rnd() * 2 - 1) * scale);
}
