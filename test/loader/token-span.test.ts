import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { maxCharsPerToken } from '../../src/loader/token-span.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';

const FIXTURES = ['tiny-llama', 'tiny-gpt2', 'tiny-qwen2', 'tiny-mistral', 'stories260K', 'tiny-gemma2'].map(
  (name) => ({
    name,
    ...modelFixture(name),
  }),
);

/** Texts that pack the most characters into each token: runs of the longest tokens, spaces, composing marks. */
function denseTexts(dir: string, decode: (ids: number[]) => string): string[] {
  const vocab = (JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.vocab ?? {}) as Record<
    string,
    number
  >;
  const longest = Object.entries(vocab)
    .sort(([a], [b]) => b.length - a.length)
    .slice(0, 20);
  return [
    ...longest.map(([, id]) => decode([id]).repeat(50)),
    ' '.repeat(2000),
    '\n'.repeat(500),
    '*'.repeat(3000),
    'ω\u0314\u0342\u0345'.repeat(200),
    '😀漢字é'.repeat(300),
  ];
}

for (const f of FIXTURES) {
  test(`${f.name}: no text needs fewer tokens than its length / the token span`, { skip: f.skip }, () => {
    const tok = loadTokenizer(f.path);
    const span = tok.maxCharsPerToken;
    assert.ok(typeof span === 'number' && span > 1, `${f.name} has a span (got ${span})`);
    for (const text of denseTexts(f.path, (ids) => tok.decode(ids))) {
      const tokens = tok.encode(text, { addSpecialTokens: false }).length;
      assert.ok(tokens * span >= text.length, `${JSON.stringify(text.slice(0, 20))}: ${tokens} tokens x ${span}`);
    }
  });
}

const bert = sharedFixture('models/tiny-bert');
test('a tokenizer that drops whitespace (WordPiece, BERT) gets no bound', { skip: bert.skip }, () => {
  assert.equal(loadTokenizer(bert.path).maxCharsPerToken, null);
});

test('what widens or removes the bound', () => {
  const base = {
    model: { type: 'BPE', vocab: { a: 0, abcd: 1 }, unk_token: '<unk>', fuse_unk: false },
    added_tokens: [{ content: '<unk>' }],
  };
  assert.equal(maxCharsPerToken(base), 5);
  assert.equal(maxCharsPerToken({ ...base, normalizer: { type: 'NFC' } }), 20, 'composition: 4 code units into 1');
  const replace = (content: string) => ({ type: 'Replace', pattern: { String: ' ' }, content });
  assert.equal(maxCharsPerToken({ ...base, normalizer: { type: 'Sequence', normalizers: [replace('▁')] } }), 5);
  const lossy = [
    { ...base, normalizer: replace('') },
    { ...base, normalizer: { type: 'Strip' } },
    { ...base, normalizer: { type: 'Replace', pattern: { Regex: ' +' }, content: ' ' } },
    { ...base, pre_tokenizer: { type: 'Whitespace' } },
    { ...base, pre_tokenizer: { type: 'Split', pattern: { Regex: ' ' }, behavior: 'Removed' } },
    { ...base, model: { ...base.model, fuse_unk: true } },
    { ...base, model: { ...base.model, unk_token: null } },
    { ...base, model: { ...base.model, type: 'Unigram' } },
    { ...base, added_tokens: [{ content: '<mask>', lstrip: true }] },
  ];
  for (const json of lossy) assert.equal(maxCharsPerToken(json), null, JSON.stringify(json));
  assert.equal(maxCharsPerToken(base, { remove_space: true }), null);
});
