import { join } from 'node:path';
import { type GgufValue, gguf } from '../../src/loader/gguf/format.ts';
import { ggufTokenizerMetadata } from '../../src/loader/gguf/tokenizer-export.ts';
import { type GgufTensorOut, writeGguf } from '../../src/loader/gguf/write.ts';
import { readJson } from '../../src/loader/hf-config.ts';
import { readTokenizerConfig } from '../../src/loader/tokenizer.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** The tiny nomic-bert's shape: 4 heads of 16, rope base 1000 as nomic-embed-text has, tiny-bert's vocabulary. */
export const TINY_NOMIC = {
  hidden: 64,
  heads: 4,
  layers: 2,
  ff: 96,
  context: 128,
  ropeBase: 1000,
  eps: 1e-12,
  vocab: 1024,
};

/** One weight of the tiny nomic-bert under llama.cpp's name and NomicBertModel's (its checkpoint's). */
export interface TinyNomicTensor {
  gguf: string;
  hf: string;
  shape: number[];
  data: Float32Array;
}

/**
 * The tiny nomic-bert's weights, seeded and scaled so activations stay O(1), each named as llama.cpp's converter
 * and as NomicBertModel's checkpoint name it (llama.cpp's tensor_mapping.py: fc11 is ffn_up, fc12 ffn_gate).
 * `attentionBias`: attn_qkv and attn_output biases too (NomicBertConfig's qkv_proj_bias; nomic-embed-text has none).
 */
export function tinyNomicTensors(opts: { attentionBias?: boolean } = {}): TinyNomicTensor[] {
  const { hidden: H, layers, ff: I } = TINY_NOMIC;
  const rand = mulberry32(7);
  const tensor = (gguf: string, hf: string, shape: number[], scale: number, center = 0): TinyNomicTensor => {
    const n = shape.reduce((a, d) => a * d, 1);
    return { gguf, hf, shape, data: Float32Array.from({ length: n }, () => center + scale * (2 * rand() - 1)) };
  };
  const matrix = (gguf: string, hf: string, out: number, inp: number) =>
    tensor(`${gguf}.weight`, `${hf}.weight`, [out, inp], Math.sqrt(3 / inp));
  const norm = (gguf: string, hf: string) => [
    tensor(`${gguf}.weight`, `${hf}.weight`, [H], 0.2, 1),
    tensor(`${gguf}.bias`, `${hf}.bias`, [H], 0.1),
  ];
  const tensors = [
    tensor('token_embd.weight', 'embeddings.word_embeddings.weight', [TINY_NOMIC.vocab, H], 1),
    tensor('token_types.weight', 'embeddings.token_type_embeddings.weight', [2, H], 0.5),
    ...norm('token_embd_norm', 'emb_ln'),
  ];
  for (let i = 0; i < layers; i++) {
    const [b, l] = [`blk.${i}`, `encoder.layers.${i}`];
    tensors.push(
      matrix(`${b}.attn_qkv`, `${l}.attn.Wqkv`, 3 * H, H),
      matrix(`${b}.attn_output`, `${l}.attn.out_proj`, H, H),
      ...(opts.attentionBias
        ? [
            tensor(`${b}.attn_qkv.bias`, `${l}.attn.Wqkv.bias`, [3 * H], 0.5),
            tensor(`${b}.attn_output.bias`, `${l}.attn.out_proj.bias`, [H], 0.5),
          ]
        : []),
      ...norm(`${b}.attn_output_norm`, `${l}.norm1`),
      matrix(`${b}.ffn_up`, `${l}.mlp.fc11`, I, H),
      matrix(`${b}.ffn_gate`, `${l}.mlp.fc12`, I, H),
      matrix(`${b}.ffn_down`, `${l}.mlp.fc2`, H, I),
      ...norm(`${b}.layer_output_norm`, `${l}.norm2`),
    );
  }
  return tensors;
}

/**
 * Writes the tiny nomic-bert as a GGUF laid out as llama.cpp's converter lays one out (fused attn_qkv, ffn_up /
 * ffn_gate / ffn_down without biases, token_types, mean pooling), with the WordPiece vocabulary of the BERT fixture at
 * `bertFixture` (1024 tokens). F32 throughout.
 */
export function writeTinyNomicBert(out: string, bertFixture: string, opts: { attentionBias?: boolean } = {}): void {
  const { hidden: H, heads, layers, ff: I, context, ropeBase, eps, vocab } = TINY_NOMIC;
  const arch = 'nomic-bert';
  const k = (key: string) => `${arch}.${key}`;
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str('tiny-nomic-bert')],
    ['general.file_type', gguf.u32(0)],
    [k('context_length'), gguf.u32(context)],
    [k('embedding_length'), gguf.u32(H)],
    [k('block_count'), gguf.u32(layers)],
    [k('feed_forward_length'), gguf.u32(I)],
    [k('attention.head_count'), gguf.u32(heads)],
    [k('attention.layer_norm_epsilon'), gguf.f32(eps)],
    [k('attention.causal'), gguf.bool(false)],
    [k('rope.freq_base'), gguf.f32(ropeBase)],
    [k('pooling_type'), gguf.u32(1)],
    ['tokenizer.ggml.token_type_count', gguf.u32(2)],
  ]);
  const tokenizerPath = join(bertFixture, 'tokenizer.json');
  const tokenizer = ggufTokenizerMetadata(
    readJson(tokenizerPath),
    readTokenizerConfig(bertFixture),
    [],
    vocab,
    tokenizerPath,
  );
  for (const [key, v] of tokenizer) meta.set(key, v);
  const tensors = tinyNomicTensors(opts).map(
    (t): GgufTensorOut => ({ name: t.gguf, shape: t.shape, dtype: 'f32', bytes: () => new Uint8Array(t.data.buffer) }),
  );
  writeGguf(out, meta, tensors);
}
