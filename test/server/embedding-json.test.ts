import assert from 'node:assert/strict';
import { test } from 'node:test';
import { base64, floatsJson, ollamaEmbedJson, openAiEmbeddingsJson } from '../../src/server/embedding-json.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** Rows of every kind of float32: random magnitudes from subnormal to huge, both signs, zeros. */
function rows(seed: number, n: number, width: number): Float32Array[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const v = new Float32Array(width);
    for (let i = 0; i < width; i++) v[i] = (r() - 0.5) * 2 ** Math.floor(r() * 300 - 150);
    v[0] = 0;
    v[1] = -0;
    v[2] = 1.401298464324817e-45;
    v[3] = -3.4028234663852886e38;
    return v;
  });
}

const MODELS = ['bench', 'we"ird\\name\n\u2028é🙂', ''];

test('OpenAI list: the text JSON.stringify writes, float and base64, for any rows and model name', () => {
  for (const [seed, n] of [
    [1, 1],
    [2, 3],
    [3, 0],
  ] as const) {
    const rs = rows(seed, n, 97);
    for (const model of MODELS) {
      for (const format of ['float', 'base64'] as const) {
        const expected = JSON.stringify({
          object: 'list',
          data: rs.map((e, index) => ({
            object: 'embedding',
            index,
            embedding: format === 'base64' ? base64(e) : Array.from(e),
          })),
          model,
          usage: { prompt_tokens: 1234, total_tokens: 1234 },
        });
        const text = openAiEmbeddingsJson(rs, format, model, 1234);
        assert.equal(text, expected);
        JSON.parse(text);
      }
    }
  }
});

test('float rows: NaN and infinities are null as JSON.stringify writes them', () => {
  const v = rows(4, 1, 8)[0]!;
  v[5] = Number.NaN;
  v[6] = Number.POSITIVE_INFINITY;
  v[7] = Number.NEGATIVE_INFINITY;
  assert.equal(floatsJson(v), JSON.stringify(Array.from(v)));
  assert.match(floatsJson(v), /,null,null,null\]$/);
});

test("base64 of a row that is a view into a larger buffer holds that row's little-endian bytes only", () => {
  const all = rows(5, 1, 16)[0]!;
  const row = all.subarray(4, 10);
  const bytes = Buffer.from(base64(row), 'base64');
  assert.equal(bytes.length, 24);
  for (let i = 0; i < row.length; i++) assert.ok(Object.is(bytes.readFloatLE(i * 4), row[i]));
});

test('Ollama /api/embed: the text JSON.stringify writes for its object', () => {
  const rs = rows(6, 2, 33);
  for (const model of MODELS) {
    const expected = JSON.stringify({
      model,
      embeddings: rs.map((r) => Array.from(r)),
      total_duration: 123456789,
      load_duration: 0,
      prompt_eval_count: 17,
    });
    assert.equal(ollamaEmbedJson(model, rs, 123456789, 0, 17), expected);
  }
});
