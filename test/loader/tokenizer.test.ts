import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';

const MODELS = ['stories260K', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'tiny-mistral', 'tiny-gpt2'];

interface Golden {
  prompts: { text: string; input_ids: number[]; greedy_ids: number[]; greedy_text: string }[];
}

for (const name of MODELS) {
  const fx = modelFixture(name);
  test(`${name}: golden prompts encode to transformers' input_ids and greedy ids decode to its text`, {
    skip: fx.skip,
  }, () => {
    const golden: Golden = JSON.parse(readFileSync(join(fx.path, 'golden.json'), 'utf8'));
    const tok = loadTokenizer(fx.path);
    for (const p of golden.prompts) {
      assert.deepEqual(tok.encode(p.text), p.input_ids, `encoding ${JSON.stringify(p.text)}`);
      assert.equal(tok.decode(p.input_ids, { skipSpecialTokens: true }), p.text);
      // Random-weight models emit invalid byte runs: transformers turns each into one U+FFFD per byte.
      assert.equal(tok.decode(p.greedy_ids), p.greedy_text, `decoding greedy_ids of ${JSON.stringify(p.text)}`);
    }
  });
}

const llama2 = sharedFixture('tokenizers/llama2');
test('llama2 tokenizer: 47 hard strings encode to sentencepiece ids and decode back', { skip: llama2.skip }, () => {
  const golden: { cases: { text: string; ids: number[]; decoded: string }[] } = JSON.parse(
    readFileSync(join(llama2.path, 'golden.json'), 'utf8'),
  );
  assert.equal(golden.cases.length, 47);
  const tok = loadTokenizer(llama2.path);
  assert.equal(tok.vocabSize, 32000);
  for (const c of golden.cases) {
    assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, `encoding ${JSON.stringify(c.text)}`);
    assert.equal(c.decoded, c.text);
    assert.equal(tok.decode(c.ids), c.text, `decoding ${JSON.stringify(c.text)}`);
  }
});

const tinyLlama = modelFixture('tiny-llama');
test('BOS and EOS ids: the tokenizer config and generation_config are merged', { skip: tinyLlama.skip }, () => {
  const tok = loadTokenizer(tinyLlama.path);
  assert.equal(tok.bosTokenId, 1);
  assert.deepEqual(tok.eosTokenIds, [2]);
  assert.notEqual(tok.encode('Hello', { addSpecialTokens: false })[0], 1);
  assert.equal(tok.encode('Hello')[0], 1);
  const merged = loadTokenizer(tinyLlama.path, { bosTokenId: 1, eosTokenIds: [5, 2] });
  assert.deepEqual(merged.eosTokenIds, [5, 2]);
  assert.equal(tok.decode([1, ...tok.encode('Hi there', { addSpecialTokens: false }), 2]), '<s> Hi there</s>');
  assert.equal(
    tok.decode([1, ...tok.encode('Hi there', { addSpecialTokens: false }), 2], { skipSpecialTokens: true }),
    'Hi there',
  );
  assert.equal(tok.decode([]), '');
});

test('add_bos_token / add_eos_token in tokenizer_config.json override the stored post-processor', {
  skip: tinyLlama.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-tok-'));
  copyFileSync(join(tinyLlama.path, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = JSON.parse(readFileSync(join(tinyLlama.path, 'tokenizer_config.json'), 'utf8'));
  const plain = loadTokenizer(tinyLlama.path).encode('Hello world', { addSpecialTokens: false });
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, add_bos_token: false }));
  assert.deepEqual(loadTokenizer(dir).encode('Hello world'), plain);
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ ...config, add_bos_token: true, add_eos_token: true, eos_token: { content: '</s>' } }),
  );
  assert.deepEqual(loadTokenizer(dir).encode('Hello world'), [1, ...plain, 2]);
  assert.deepEqual(loadTokenizer(dir).encode('Hello world', { addSpecialTokens: false }), plain);
});

/** Random text rich in what sentencepiece splitting cares about: runs of spaces, newlines, tabs, mixed scripts. */
function randomText(seed: number, length: number): string {
  const pieces = [
    ' ',
    '  ',
    '   ',
    '\n',
    '\t',
    'the',
    'The',
    ' of',
    'ing',
    'é',
    '将',
    '写入',
    '🙂',
    '▁',
    '12',
    '.',
    ',',
    'ab',
  ];
  let s = seed >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += pieces[s % pieces.length];
  }
  return out;
}

for (const [name, fx] of [
  ['llama2', llama2],
  ['tiny-llama', tinyLlama],
] as const) {
  test(`${name}: splitting sentencepiece text at word starts gives the same ids as one whole-text BPE`, {
    skip: fx.skip,
  }, () => {
    const whole = new Tokenizer(
      JSON.parse(readFileSync(join(fx.path, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(join(fx.path, 'tokenizer_config.json'), 'utf8')),
    );
    const tok = loadTokenizer(fx.path);
    for (let seed = 1; seed <= 40; seed++) {
      const text = randomText(seed, 60);
      assert.deepEqual(tok.encode(text), whole.encode(text).ids, JSON.stringify(text));
    }
  });
}

test('a BPE whose merges join a character to a following ▁ is not split at word starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-tok-'));
  const vocab = { a: 0, '▁': 1, b: 2, 'a▁': 3, '▁b': 4 };
  const json = {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: {
      type: 'BPE',
      vocab,
      merges: [
        ['a', '▁'],
        ['▁', 'b'],
      ],
      unk_token: null,
    },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  // Whole-text BPE merges "a▁" first (rank 0); a split before "▁" would give a, ▁b.
  assert.deepEqual(loadTokenizer(dir).encode('a▁b'), [3, 2]);
});

test('byte-fallback runs decode as transformers does: invalid UTF-8 becomes one U+FFFD per byte', {
  skip: llama2.skip,
}, () => {
  const tok = loadTokenizer(llama2.path);
  // llama2 keeps byte <0xNN> at id NN + 3.
  const byte = (b: number) => b + 3;
  assert.equal(tok.isByteFallbackToken?.(byte(0x04)), true);
  assert.equal(tok.isByteFallbackToken?.(15043), false);
  assert.equal(tok.decode([byte(0x04)]), '\u0004');
  assert.equal(tok.decode([byte(0x04), byte(0x9f)]), '\uFFFD\uFFFD');
  assert.equal(tok.decode([byte(0xe5), byte(0xb0), byte(0x86)]), '将');
  assert.equal(tok.decode([byte(0xe5), byte(0xb0), 15043, byte(0x86)]), '\uFFFD\uFFFD Hello\uFFFD');
});
