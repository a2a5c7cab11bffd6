import { join } from 'node:path';
import { type GgufValue, gguf } from '../../src/loader/gguf/format.ts';
import { ggufTokenizerMetadata } from '../../src/loader/gguf/tokenizer-export.ts';
import { type GgufTensorOut, writeGguf } from '../../src/loader/gguf/write.ts';
import { readJson } from '../../src/loader/hf-config.ts';
import { readTokenizerConfig } from '../../src/loader/tokenizer.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** The tiny nomic-bert's shape: 4 heads of 16, rope base 1000 as nomic-embed-text has. */
export const TINY_NOMIC = { hidden: 64, heads: 4, layers: 2, ff: 96, context: 128, ropeBase: 1000, eps: 1e-12 };

/**
 * Writes a tiny random nomic-bert GGUF as llama.cpp's converter lays one out (fused attn_qkv, ffn_up / ffn_gate /
 * ffn_down without biases, token_types, mean pooling), with the WordPiece vocabulary of the BERT fixture at
 * `bertFixture` (1024 tokens). F32 throughout; weights are seeded, scaled so activations stay O(1). `attentionBias`:
 * attn_qkv and attn_output biases too, which llama.cpp adds where a file has them (nomic-embed-text has none).
 */
export function writeTinyNomicBert(out: string, bertFixture: string, opts: { attentionBias?: boolean } = {}): void {
  const { hidden: H, heads, layers, ff: I, context, ropeBase, eps } = TINY_NOMIC;
  const vocab = 1024;
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
  const rand = mulberry32(7);
  const tensor = (name: string, shape: number[], scale: number, center = 0): GgufTensorOut => ({
    name,
    shape,
    dtype: 'f32',
    bytes: () => {
      const n = shape.reduce((a, d) => a * d, 1);
      const v = Float32Array.from({ length: n }, () => center + scale * (2 * rand() - 1));
      return new Uint8Array(v.buffer);
    },
  });
  const matrix = (name: string, out: number, inp: number) => tensor(name, [out, inp], Math.sqrt(3 / inp));
  const norm = (name: string) => [tensor(`${name}.weight`, [H], 0.2, 1), tensor(`${name}.bias`, [H], 0.1)];
  const tensors: GgufTensorOut[] = [
    tensor('token_embd.weight', [vocab, H], 1),
    tensor('token_types.weight', [2, H], 0.5),
    ...norm('token_embd_norm'),
  ];
  for (let i = 0; i < layers; i++) {
    const b = `blk.${i}`;
    tensors.push(
      matrix(`${b}.attn_qkv.weight`, 3 * H, H),
      matrix(`${b}.attn_output.weight`, H, H),
      ...(opts.attentionBias
        ? [tensor(`${b}.attn_qkv.bias`, [3 * H], 0.5), tensor(`${b}.attn_output.bias`, [H], 0.5)]
        : []),
      ...norm(`${b}.attn_output_norm`),
      matrix(`${b}.ffn_up.weight`, I, H),
      matrix(`${b}.ffn_gate.weight`, I, H),
      matrix(`${b}.ffn_down.weight`, H, I),
      ...norm(`${b}.layer_output_norm`),
    );
  }
  writeGguf(out, meta, tensors);
}
