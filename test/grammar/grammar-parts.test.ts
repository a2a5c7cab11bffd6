import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rewriteNumericBounds } from '../../src/grammar/schema-rewrite.ts';
import { choiceGrammar, grammarKey } from '../../src/grammar/spec.ts';
import { UTF8_START, Utf8Guard, utf8Step } from '../../src/grammar/utf8-guard.ts';
import { loadGrammarVocabulary, tokenBytes } from '../../src/grammar/vocabulary.ts';
import { modelFixture } from '../helpers/fixtures.ts';

test('grammar keys ignore key order and tell specs apart', () => {
  const a = grammarKey({ type: 'json_schema', schema: { type: 'object', required: ['x'] } });
  assert.equal(a, grammarKey({ type: 'json_schema', schema: { required: ['x'], type: 'object' } }));
  assert.notEqual(a, grammarKey({ type: 'json_schema', schema: { type: 'object', required: ['y'] } }));
  assert.notEqual(grammarKey({ type: 'regex', pattern: 'a' }), grammarKey({ type: 'grammar', grammar: 'a' }));
});

test('choices become EBNF literals, quotes and non-ASCII escaped', () => {
  assert.equal(choiceGrammar(['a"b', 'é\n']), 'root ::= "a\\"b" | "\\u00e9\\n"');
});

test('numeric bounds are rewritten into ranges whose every value satisfies the original', () => {
  assert.deepEqual(rewriteNumericBounds({ type: 'integer', minimum: -5 }), {
    type: 'integer',
    minimum: -5,
    maximum: 1e9,
  });
  assert.deepEqual(rewriteNumericBounds({ type: 'number', minimum: 0, maximum: 1, description: 'p' }), {
    description: 'p',
    anyOf: [
      { type: 'integer', minimum: 0, maximum: 1 },
      { type: 'number', minimum: 0, maximum: 0 },
    ],
  });
  assert.deepEqual(rewriteNumericBounds({ type: 'integer', exclusiveMinimum: 2, exclusiveMaximum: 9 }), {
    type: 'integer',
    minimum: 3,
    maximum: 8,
  });
  // Nested positions are reached; unbounded numbers and other nodes are left alone.
  const nested = rewriteNumericBounds({
    type: 'object',
    properties: { a: { type: 'array', items: { type: 'integer', maximum: -3 } }, b: { type: 'number' } },
    $defs: { c: { anyOf: [{ type: 'integer', minimum: 0, maximum: 4 }] } },
  });
  assert.deepEqual(nested, {
    type: 'object',
    properties: { a: { type: 'array', items: { type: 'integer', minimum: -1e9, maximum: -3 } }, b: { type: 'number' } },
    $defs: { c: { anyOf: [{ type: 'integer', minimum: 0, maximum: 4 }] } },
  });
});

test('UTF-8 steps reject overlong forms, surrogates, code points past U+10FFFF and stray bytes', () => {
  const ok = (...b: number[]) => utf8Step(UTF8_START, Uint8Array.from(b)) !== null;
  assert.ok(ok(0x41, 0xc3, 0xa9)); // Aé
  assert.ok(ok(0xe2, 0x82)); // an open character is fine
  assert.ok(ok(0xf0, 0x9f, 0x98, 0x80)); // 😀
  assert.ok(!ok(0xc0, 0x80)); // overlong
  assert.ok(!ok(0xe0, 0x80, 0x80)); // overlong
  assert.ok(!ok(0xed, 0xa0, 0x80)); // surrogate
  assert.ok(!ok(0xf4, 0x90, 0x80, 0x80)); // past U+10FFFF
  assert.ok(!ok(0x80)); // continuation with nothing open
  assert.ok(!ok(0xc3, 0x41)); // open character not continued
});

test('the UTF-8 guard narrows a mask to the tokens that continue an open character', () => {
  const bytes = [[0x41], [0xc3], [0xa9], [0xa9, 0x41], [0x80], []].map((b) => Uint8Array.from(b));
  const guard = new Utf8Guard(bytes, 1);
  const all = () => Int32Array.of(0b111111);
  const m = all();
  guard.narrow(m, UTF8_START);
  assert.equal(m[0], 0b100011); // A, the lead byte, the stop token (no bytes)
  const open = guard.next(UTF8_START, 1);
  const m2 = all();
  guard.narrow(m2, open);
  assert.equal(m2[0], 0b011100); // only continuations
  assert.deepEqual(guard.next(open, 3), UTF8_START);
});

const qwen = modelFixture('tiny-qwen2');
const llama = modelFixture('tiny-llama');
test('vocabularies: byte-level (Qwen2) and byte-fallback with a prepended space (Llama)', {
  skip: qwen.skip || llama.skip,
}, () => {
  const q = loadGrammarVocabulary(qwen.path);
  assert.equal(q.vocabType, 'byte_level');
  assert.equal(q.prependSpace, false);
  assert.equal(q.tokens[2], ''); // <|im_end|> is special
  const qb = tokenBytes(q);
  assert.deepEqual([...qb[q.tokens.indexOf('Ġ')]!], [0x20]);
  const l = loadGrammarVocabulary(llama.path);
  assert.equal(l.vocabType, 'byte_fallback');
  assert.equal(l.prependSpace, true);
  const lb = tokenBytes(l);
  assert.deepEqual([...lb[l.tokens.indexOf('<0x0A>')]!], [0x0a]);
  assert.deepEqual([...lb[l.tokens.indexOf('▁')]!], [0x20]);
});
