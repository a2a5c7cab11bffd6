import assert from 'node:assert/strict';
import { test } from 'node:test';
import { samplingFrom } from '../../src/primitives/sampling-names.ts';

test('OpenAI fields, Ollama options and Modelfile PARAMETERs map to the same sampling parameters', () => {
  const want = { temperature: 0.7, topP: 0.9, topK: 40, repetitionPenalty: 1.2, seed: 3, stop: ['x'], maxTokens: 5 };
  const openai = {
    temperature: 0.7,
    top_p: 0.9,
    top_k: 40,
    repetition_penalty: 1.2,
    seed: 3,
    stop: 'x',
    max_tokens: 5,
  };
  const ollama = { temperature: 0.7, top_p: 0.9, top_k: 40, repeat_penalty: 1.2, seed: 3, stop: ['x'], num_predict: 5 };
  assert.deepEqual(samplingFrom('openai', openai), want);
  assert.deepEqual(samplingFrom('ollama', ollama), want);
});

test('absent, null, mistyped and non-count values are left out; each API knows only its own names', () => {
  assert.deepEqual(samplingFrom('ollama', { num_predict: -1, temperature: null, seed: '3', num_ctx: 512 }), {});
  assert.deepEqual(samplingFrom('ollama', { repetition_penalty: 1.5, ignore_eos: true }), {});
  assert.deepEqual(samplingFrom('openai', { repeat_penalty: 1.5, num_predict: 3 }), {});
  assert.deepEqual(samplingFrom('openai', { ignore_eos: true, stop_token_ids: [7], logit_bias: { '7': 1 }, n: 2 }), {
    ignoreEos: true,
    stopTokenIds: [7],
    logitBias: { '7': 1 },
    n: 2,
  });
});
