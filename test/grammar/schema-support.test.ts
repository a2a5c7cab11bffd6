import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeUnsupported, unsupportedKeyword } from '../../src/grammar/schema-support.ts';
import { xgrammar } from '../../src/grammar/xgrammar.ts';

/** The EBNF xgrammar makes of a schema (strict, as compile.ts asks). */
async function ebnf(schema: unknown): Promise<string> {
  const grammar = await xgrammar().Grammar.fromJSONSchema(JSON.stringify(schema), false, -1, undefined, true);
  try {
    return grammar.toString();
  } finally {
    grammar.dispose();
  }
}

const int = { type: 'integer' };
const ints = { type: 'array', items: int };
const ab = { type: 'object', properties: { a: int, b: int } };

/**
 * Each refused keyword in a schema, and the schema with another value for it: xgrammar makes one grammar of both (its
 * rule names differ from those of a schema without the keyword, so the keyword stays in).
 */
const IGNORED: [keyword: string, schema: object, variant: object][] = [
  ['multipleOf', { type: 'integer', multipleOf: 3 }, { type: 'integer', multipleOf: 7 }],
  ['uniqueItems', { ...ints, uniqueItems: true }, { ...ints, uniqueItems: false }],
  ['not', { type: 'integer', not: { const: 3 } }, { type: 'integer', not: { const: 4 } }],
  ['contains', { type: 'array', contains: { const: 1 } }, { type: 'array', contains: { const: 2 } }],
  ['maxContains', { ...ints, maxContains: 1 }, { ...ints, maxContains: 5 }],
  ['if', { ...ab, if: { required: ['a'] }, else: { required: ['b'] } }, { ...ab, if: { required: ['b'] } }],
  ['dependentSchemas', { ...ab, dependentSchemas: { a: { required: ['b'] } } }, { ...ab, dependentSchemas: {} }],
  ['dependentRequired', { ...ab, dependentRequired: { a: ['b'] } }, { ...ab, dependentRequired: { b: ['a'] } }],
  ['dependencies', { ...ab, dependencies: { a: ['b'] } }, { ...ab, dependencies: { b: ['a'] } }],
  ['allOf', { allOf: [{ type: 'string' }, { maxLength: 3 }] }, { allOf: [{ type: 'integer' }, { minimum: 3 }] }],
  ['minLength', { type: 'string', pattern: '^a+$', minLength: 3 }, { type: 'string', pattern: '^a+$', minLength: 9 }],
  ['pattern', { type: 'string', format: 'email', pattern: '^a+$' }, { type: 'string', format: 'email', pattern: 'b' }],
  ['maxLength', { type: 'string', format: 'email', maxLength: 5 }, { type: 'string', format: 'email', maxLength: 50 }],
];

test('every refused keyword is one xgrammar ignores: another value for it makes the same grammar', async () => {
  for (const [keyword, schema, variant] of IGNORED) {
    assert.equal(unsupportedKeyword(schema)?.keyword, keyword);
    assert.equal(await ebnf(schema), await ebnf(variant), `xgrammar reads ${keyword} now: allow it again`);
  }
  assert.equal(unsupportedKeyword({ allOf: [{ type: 'string' }] }), null);
});

test('keywords xgrammar enforces pass, and so do uniqueItems false and keywords as property names', async () => {
  const enforced = [
    { type: 'object', propertyNames: { maxLength: 2 } },
    { type: 'object', patternProperties: { '^x': int } },
    { type: 'array', prefixItems: [int], unevaluatedItems: { type: 'string' } },
    { type: 'object', unevaluatedProperties: int },
    { type: 'string', pattern: '^a+$' },
    { type: 'string', format: 'date' },
    { type: 'string', minLength: 2, maxLength: 4 },
  ];
  for (const schema of enforced) {
    assert.equal(unsupportedKeyword(schema), null, JSON.stringify(schema));
    const { [Object.keys(schema).at(-1)!]: _, ...without } = schema as Record<string, unknown>;
    assert.notEqual(await ebnf(schema), await ebnf(without), `${JSON.stringify(schema)} is ignored now`);
  }
  assert.equal(unsupportedKeyword({ ...ints, uniqueItems: false }), null);
  assert.equal(unsupportedKeyword({ type: 'object', properties: { not: int, multipleOf: int } }), null);
});

test('the path leads to the keyword through properties, lists, items and definitions', () => {
  const at = (schema: object) => describeUnsupported(unsupportedKeyword(schema)!);
  assert.equal(at({ multipleOf: 2 }), '"multipleOf" at the root is not supported by the grammar engine');
  assert.equal(
    at({ type: 'object', properties: { m: { type: 'number', multipleOf: 0.5 } } }),
    '"multipleOf" at properties.m is not supported by the grammar engine',
  );
  assert.equal(
    at({ anyOf: [int, { type: 'array', items: { properties: { 'a b': { not: {} } } } }] }),
    '"not" at anyOf[1].items.properties["a b"] is not supported by the grammar engine',
  );
  assert.equal(
    at({ $defs: { S: { type: 'string', pattern: 'x', maxLength: 3 } }, $ref: '#/$defs/S' }),
    '"maxLength" beside "pattern" at $defs.S is not supported by the grammar engine',
  );
});
