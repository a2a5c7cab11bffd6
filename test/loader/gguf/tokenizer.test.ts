import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadChatTemplate } from '../../../src/loader/chat-template.ts';
import { convertToGguf } from '../../../src/loader/gguf/convert.ts';
import { ggufHeader } from '../../../src/loader/gguf/files.ts';
import { type GgufValue, gguf } from '../../../src/loader/gguf/format.ts';
import { tokenizerFilesFromGguf } from '../../../src/loader/gguf/tokenizer.ts';
import { encodeGguf } from '../../../src/loader/gguf/write.ts';
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

const bert = modelFixture('tiny-bert');
describe('WordPiece (llama.cpp bert / WPM)', { skip: bert.skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-gguf-wpm-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const TEXTS = [
    'Hello, World! How are you?',
    'Café naïve résumé ÉCOLE Ångström',
    'punctuation: (a)[b]{c} "quoted" don\'t — end… ¿qué?',
    'unknownwordzzqx supercalifragilistic 🙂 ∰',
    '将S写入到HBM 中文和English混合',
    '  tabs\tand\nnewlines   12345.678 ',
    '',
  ];

  test("the tiny-bert fixture's tokenizer and the one rebuilt from its GGUF give the same ids", () => {
    const out = join(dir, 'tiny-bert.gguf');
    convertToGguf(bert.path, out, 'f32');
    const file = ggufHeader(out);
    const tokens = file.value('tokenizer.ggml.tokens') as string[];
    // llama.cpp's layout: control tokens as they are, ▁ before word-initial pieces, no ## on continuations.
    assert.deepEqual([tokens[2], tokens[36]], ['[CLS]', '▁a']);
    assert.ok(tokens.some((t) => !t.startsWith('▁') && !t.startsWith('[')));
    assert.equal(file.value('tokenizer.ggml.model'), 'bert');
    const [hf, gg] = [loadTokenizer(bert.path), loadTokenizer(out)];
    for (const text of TEXTS) {
      assert.deepEqual(gg.encode(text), hf.encode(text), JSON.stringify(text));
      assert.deepEqual(gg.encode(text, { addSpecialTokens: false }), hf.encode(text, { addSpecialTokens: false }));
      assert.equal(
        gg.decode(gg.encode(text), { skipSpecialTokens: true }),
        hf.decode(hf.encode(text), { skipSpecialTokens: true }),
      );
    }
    assert.ok(hf.encode(TEXTS[3]!).includes(1), 'an unknown word gives [UNK]');
    const config = tokenizerFilesFromGguf(file).config;
    assert.deepEqual(
      [config.cls_token, config.sep_token, config.pad_token, config.do_lower_case],
      ['[CLS]', '[SEP]', '[PAD]', true],
    );
  });

  test('a vocabulary with upper-case pieces is cased: no lowercasing, no accent stripping', () => {
    const out = join(dir, 'cased.gguf');
    const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '▁Hello', '▁hello', '▁é', 'llo'];
    const meta = new Map<string, GgufValue>([
      ['general.architecture', gguf.str('bert')],
      ['tokenizer.ggml.model', gguf.str('bert')],
      ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
      ['tokenizer.ggml.token_type', gguf.array('i32', [3, 3, 3, 3, 1, 1, 1, 1])],
      ['tokenizer.ggml.unknown_token_id', gguf.u32(1)],
      ['tokenizer.ggml.cls_token_id', gguf.u32(2)],
      ['tokenizer.ggml.seperator_token_id', gguf.u32(3)],
    ]);
    writeFileSync(out, encodeGguf(meta, []));
    const tok = loadTokenizer(out);
    assert.deepEqual(tok.encode('Hello hello é'), [2, 4, 5, 6, 3]);
    assert.deepEqual(tok.encode('HELLO'), [2, 1, 3]);
  });
});

test("t5 (UGM): XLM-R's 250k pieces load; the best-scoring split wins; the charsmap becomes a Precompiled normalizer", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-gguf-t5-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 't5.gguf');
  const filler = Array.from({ length: 250_000 }, (_, i) => `▁x${i}`);
  const tokens = ['<s>', '<pad>', '</s>', '<unk>', '▁ab', '▁a', 'b', '▁', ...filler];
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str('bert')],
    ['tokenizer.ggml.model', gguf.str('t5')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.scores', gguf.array('f32', [0, 0, 0, 0, -1, -2, -2, -3, ...filler.map((_, i) => -4 - i / 1e5)])],
    ['tokenizer.ggml.token_type', gguf.array('i32', [3, 3, 3, 2, ...tokens.slice(4).map(() => 1)])],
    ['tokenizer.ggml.precompiled_charsmap', gguf.array('u8', [1, 2, 3])],
    ['tokenizer.ggml.bos_token_id', gguf.u32(0)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(3)],
  ]);
  writeFileSync(out, encodeGguf(meta, []));
  const tok = loadTokenizer(out);
  assert.deepEqual(tok.encode('ab'), [0, 4, 2]);
  assert.deepEqual(tok.encode(' b  x7 ☃☃', { addSpecialTokens: false }), [7, 6, 15, 7, 3]);
  assert.deepEqual(tok.encodePair!('ab', 'b').ids, [0, 4, 2, 2, 7, 6, 2]);
  assert.equal(tok.decode(tok.encode('ab b x7'), { skipSpecialTokens: true }), 'ab b x7');
  const normalizer = JSON.stringify(tokenizerFilesFromGguf(ggufHeader(out)).json.normalizer);
  assert.ok(normalizer.includes('{"type":"Precompiled","precompiled_charsmap":"AQID"}'), normalizer);
});
