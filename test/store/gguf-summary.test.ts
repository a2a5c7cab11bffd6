import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizeGguf } from '../../src/store/gguf-summary.ts';

const header = (metadata: Record<string, unknown>, tensors: [string, number[], string][]) => ({
  metadata: new Map(Object.entries(metadata).map(([k, value]) => [k, { value }])),
  tensors: new Map(tensors.map(([name, dims, type]) => [name, { dims, type: { name: type } }])),
});

test("a GGUF header as Ollama's /api/show describes it", () => {
  const vocab = Array.from({ length: 1000 }, (_, i) => `t${i}`);
  const s = summarizeGguf(
    header(
      {
        'general.architecture': 'llama',
        'general.file_type': 15,
        'llama.context_length': 131072,
        'llama.embedding_length': 2048,
        'llama.rope.dimension_sections': [1, 2, 3],
        'tokenizer.ggml.tokens': vocab,
        'tokenizer.ggml.bos_token_id': 128000n,
      },
      [
        ['token_embd.weight', [2048, 1000], 'Q6_K'],
        ['blk.0.attn_q.weight', [2048, 2048], 'Q4_K'],
        ['output_norm.weight', [2048], 'F32'],
      ],
    ),
  );
  const params = 2048 * 1000 + 2048 * 2048 + 2048;
  assert.deepEqual(s, {
    family: 'llama',
    parameterCount: params,
    quantization: 'Q4_K_M',
    contextLength: 131072,
    modelInfo: {
      'general.architecture': 'llama',
      'general.file_type': 15,
      'general.parameter_count': params,
      'llama.context_length': 131072,
      'llama.embedding_length': 2048,
      'llama.rope.dimension_sections': [1, 2, 3],
      'tokenizer.ggml.tokens': null,
      'tokenizer.ggml.bos_token_id': 128000,
    },
  });
});

test('without general.file_type the type holding most weights names the quantization', () => {
  const s = summarizeGguf(
    header({ 'general.architecture': 'qwen2' }, [
      ['a', [256, 256], 'Q8_0'],
      ['b', [256], 'F32'],
    ]),
  );
  assert.equal(s.quantization, 'Q8_0');
  assert.equal(s.contextLength, null);
});
