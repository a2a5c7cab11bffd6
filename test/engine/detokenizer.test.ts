import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { IncrementalDetokenizer } from '../../src/engine/detokenizer.ts';
import { loadTokenizer, type TextTokenizer } from '../../src/loader/tokenizer.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';

const MODELS = ['stories260K', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'tiny-mistral', 'tiny-gpt2'];
const HARD_TEXTS = [
  'Flash Attention 将S写入到HBM, then the kernel',
  'emoji 🙂🦙 and 😶‍🌫️ family 👩‍👩‍👧 flags 🇯🇵',
  'CJK 我想在apple工作 天～ and Khmer កាន់តែពិសេសអាច',
  'accents: Führer, café, naïve, Ångström, ½ and ｆｕｌｌｗｉｄｔｈ',
  '  leading spaces, tabs\tand\nnewlines; numbers 12345 and émojis 🙂!',
];

/** Streams ids one at a time and checks the deltas against the full decode. */
function checkStream(tok: TextTokenizer, ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): void {
  const detok = new IncrementalDetokenizer(tok, opts);
  const chunks = ids.map((id) => detok.push(id));
  chunks.push(detok.flush());
  const full = tok.decode(ids, opts);
  assert.equal(chunks.join(''), full, `stream of ${JSON.stringify(ids)}`);
  assert.equal(detok.text, full);
  if (!full.includes('\uFFFD')) {
    for (const c of chunks) assert.ok(!c.includes('\uFFFD'), `chunk ${JSON.stringify(c)} of ${JSON.stringify(full)}`);
  }
}

for (const name of MODELS) {
  const fx = modelFixture(name);
  test(`${name}: streaming greedy_ids and hard texts gives the full decode, never a broken character`, {
    skip: fx.skip,
  }, () => {
    const tok = loadTokenizer(fx.path);
    const golden: { prompts: { input_ids: number[]; greedy_ids: number[] }[] } = JSON.parse(
      readFileSync(join(fx.path, 'golden.json'), 'utf8'),
    );
    for (const p of golden.prompts) {
      checkStream(tok, p.greedy_ids);
      checkStream(tok, p.greedy_ids, { skipSpecialTokens: true });
      // With the prompt as context, the stream is the full decode past the prompt's text.
      const detok = new IncrementalDetokenizer(tok, { promptIds: p.input_ids, skipSpecialTokens: true });
      const streamed = p.greedy_ids.map((id) => detok.push(id)).join('') + detok.flush();
      const promptText = tok.decode(p.input_ids, { skipSpecialTokens: true });
      const all = tok.decode([...p.input_ids, ...p.greedy_ids], { skipSpecialTokens: true });
      assert.ok(all.startsWith(promptText));
      assert.equal(streamed, all.slice(promptText.length));
    }
    for (const text of HARD_TEXTS) {
      checkStream(tok, tok.encode(text, { addSpecialTokens: false }));
      checkStream(tok, tok.encode(text), { skipSpecialTokens: true });
    }
    // Random ids, special tokens included: broken UTF-8 may appear in the full text, the stream must still match.
    const next = mulberry32(name.length);
    for (let trial = 0; trial < 20; trial++) {
      checkStream(
        tok,
        Array.from({ length: 24 }, () => Math.floor(next() * tok.vocabSize)),
        { skipSpecialTokens: trial % 2 === 0 },
      );
    }
  });
}

const llama2 = sharedFixture('tokenizers/llama2');
test('llama2 byte-fallback tokens: characters split over several tokens are emitted whole', {
  skip: llama2.skip,
}, () => {
  const tok = loadTokenizer(llama2.path);
  const emoji = tok.encode('😁', { addSpecialTokens: false });
  // '▁' then the four UTF-8 bytes of U+1F601 as <0xF0><0x9F><0x98><0x81>.
  assert.deepEqual(emoji, [29871, 243, 162, 155, 132]);
  const detok = new IncrementalDetokenizer(tok, { promptIds: tok.encode('Hi') });
  // The byte run is emitted whole once a non-byte token ('!') ends it.
  assert.deepEqual(
    [...emoji, 29991].map((id) => detok.push(id)),
    [' ', '', '', '', '', '😁!'],
  );
  const golden: { cases: { text: string; ids: number[] }[] } = JSON.parse(
    readFileSync(join(llama2.path, 'golden.json'), 'utf8'),
  );
  for (const c of golden.cases) checkStream(tok, c.ids);
  for (const text of HARD_TEXTS) checkStream(tok, tok.encode(text));
});

test('a byte-fallback run is held back until it ends, since a later byte can turn it into U+FFFDs', {
  skip: llama2.skip,
}, () => {
  const tok = loadTokenizer(llama2.path);
  const hello = tok.encode('Hello', { addSpecialTokens: false });
  const detok = new IncrementalDetokenizer(tok);
  assert.equal(detok.push(hello), 'Hello');
  // <0x04> alone is a valid character, but <0x04><0x9F> decodes to two U+FFFD.
  assert.equal(detok.push(0x04 + 3), '');
  assert.equal(detok.push(0x9f + 3), '');
  assert.equal(detok.push(hello), '\uFFFD\uFFFD Hello');
  assert.equal(detok.text, tok.decode([...hello, 0x04 + 3, 0x9f + 3, ...hello]));
});

test('a character left incomplete at the end comes out on flush, as the full decode has it', {
  skip: llama2.skip,
}, () => {
  const tok = loadTokenizer(llama2.path);
  const detok = new IncrementalDetokenizer(tok);
  assert.equal(detok.push(tok.encode('ok', { addSpecialTokens: false })), 'ok');
  assert.equal(detok.push([243, 162]), '');
  assert.equal(detok.flush(), tok.decode([...tok.encode('ok', { addSpecialTokens: false }), 243, 162]).slice(2));
  assert.ok(detok.text.endsWith('\uFFFD'));
});
