import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadChatTemplate } from '../../../src/loader/chat-template.ts';
import { loadTokenizer } from '../../../src/loader/tokenizer.ts';
import { modelFixture, sharedFixture } from '../../helpers/fixtures.ts';

/** llama.cpp's test-tokenizer-0 cases: .inp texts split by the marker, .out one line of ids per text. */
function vocabCases(path: string): { text: string; ids: number[] }[] {
  const texts = readFileSync(`${path}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  const lines = readFileSync(`${path}.out`, 'utf8').split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() ? lines[i]!.trim().split(/\s+/).map(Number) : [] }));
}

for (const name of ['llama-spm', 'gpt-2', 'phi-3']) {
  const fixture = sharedFixture(`gguf/ggml-vocab-${name}.gguf`);
  describe(`ggml-vocab-${name}.gguf`, { skip: fixture.skip }, () => {
    test("tokenizer.ggml.* gives llama.cpp's own ids on its test strings", () => {
      const tok = loadTokenizer(fixture.path);
      const cases = vocabCases(fixture.path);
      assert.ok(cases.length >= 40);
      for (const c of cases)
        assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, JSON.stringify(c.text));
    });

    test('decoding gives the text back (byte-level BPE; where no space cleanup applies)', {
      skip: name !== 'gpt-2',
    }, () => {
      const tok = loadTokenizer(fixture.path);
      for (const c of vocabCases(fixture.path)) {
        // GPT-2's vocabulary cleans up " ?", " ." and the like when decoding, as llama.cpp does (clean_spaces).
        if (/ [.?!,']|n't/.test(c.text)) continue;
        assert.equal(tok.decode(c.ids), c.text);
      }
      assert.equal(tok.decode(tok.encode('Hello world', { addSpecialTokens: false })), 'Hello world');
    });
  });
}

const spm = sharedFixture('gguf/ggml-vocab-llama-spm.gguf');
test('llama SPM: BOS added by default, EOS and control tokens special, byte fallback tokens flagged', {
  skip: spm.skip,
}, () => {
  const tok = loadTokenizer(spm.path);
  assert.equal(tok.bosTokenId, 1);
  assert.deepEqual(tok.eosTokenIds, [2]);
  assert.deepEqual(tok.encode('Hi').slice(0, 1), [1]);
  assert.deepEqual(tok.encode('Hi</s>', { addSpecialTokens: false }).at(-1), 2);
  assert.equal(tok.decode([1, ...tok.encode('Hi', { addSpecialTokens: false })], { skipSpecialTokens: true }), 'Hi');
  const bytes = tok.encode('\u{1F999}', { addSpecialTokens: false }).filter((id) => tok.isByteFallbackToken?.(id));
  assert.equal(bytes.length, 4);
});

const stories = sharedFixture('gguf/stories260K.gguf');
const storiesDir = modelFixture('stories260K');
test('stories260K.gguf tokenizes the golden prompts as its Hugging Face tokenizer.json does', {
  skip: stories.skip || storiesDir.skip,
}, () => {
  const golden = JSON.parse(readFileSync(join(storiesDir.path, 'golden.json'), 'utf8'));
  const tok = loadTokenizer(stories.path);
  for (const p of golden.prompts) {
    assert.deepEqual(tok.encode(p.text), p.input_ids);
    assert.equal(tok.decode(p.greedy_ids), p.greedy_text);
  }
  assert.equal(loadChatTemplate(stories.path), null);
});
