/**
 * JSON schemas for the structured-output fuzz tests: every feature the grammar engine supports (types, properties and
 * required, enum, const, arrays with min/max items, nested objects, anyOf/oneOf, $ref/$defs, pattern, format,
 * additionalProperties), each bounded (maxLength, maximum, maxItems) so that a random model can finish. xgrammar
 * ignores maxLength beside a format or pattern, so those strings carry none (their grammar bounds them or not).
 */
const str = (maxLength = 8, extra: object = {}) => ({ type: 'string', maxLength, ...extra });
const int = (minimum = -50, maximum = 50) => ({ type: 'integer', minimum, maximum });
const num = (minimum = -10, maximum = 10) => ({ type: 'number', minimum, maximum });
const obj = (properties: Record<string, unknown>, required = Object.keys(properties), extra: object = {}) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  ...extra,
});
const arr = (items: unknown, minItems = 0, maxItems = 3) => ({ type: 'array', items, minItems, maxItems });

export const SCHEMAS: { name: string; schema: Record<string, unknown> }[] = [
  { name: 'string', schema: str() },
  { name: 'short string with minLength', schema: str(4, { minLength: 2 }) },
  { name: 'integer range', schema: int(0, 9) },
  { name: 'negative integer range', schema: int(-300, -5) },
  { name: 'number range', schema: num(0, 1) },
  { name: 'boolean', schema: { type: 'boolean' } },
  { name: 'null', schema: { type: 'null' } },
  { name: 'string enum', schema: { enum: ['red', 'green', 'blue'] } },
  { name: 'mixed enum', schema: { enum: [1, 'two', null, true, 3.5] } },
  { name: 'const string', schema: { const: 'fixed' } },
  { name: 'const object', schema: { const: { a: 1, b: [true, null] } } },
  { name: 'flat object', schema: obj({ name: str(), age: int(0, 120) }) },
  { name: 'optional properties', schema: obj({ a: str(), b: int(), c: { type: 'boolean' } }, ['a']) },
  { name: 'no required', schema: obj({ x: int(), y: int() }, []) },
  { name: 'empty object', schema: obj({}, []) },
  { name: 'array of integers', schema: arr(int(), 0, 4) },
  { name: 'array min items', schema: arr(str(4), 2, 3) },
  { name: 'array exact items', schema: arr({ type: 'boolean' }, 3, 3) },
  { name: 'array of objects', schema: arr(obj({ id: int(0, 999), tag: str(5) }), 1, 2) },
  { name: 'nested object', schema: obj({ user: obj({ name: str(), address: obj({ city: str(), zip: str(5) }) }) }) },
  { name: 'deep nesting', schema: obj({ a: obj({ b: obj({ c: obj({ d: int() }) }) }) }) },
  { name: 'anyOf scalars', schema: { anyOf: [str(), int(), { type: 'null' }] } },
  {
    name: 'oneOf objects',
    schema: { oneOf: [obj({ kind: { const: 'a' }, x: int() }), obj({ kind: { const: 'b' }, y: str() })] },
  },
  { name: 'nullable via type list', schema: obj({ v: { type: ['string', 'null'], maxLength: 6 } }) },
  { name: 'anyOf in property', schema: obj({ v: { anyOf: [int(), { type: 'boolean' }] } }) },
  {
    name: '$ref to $defs',
    schema: {
      $defs: { point: obj({ x: num(), y: num() }) },
      ...obj({ p: { $ref: '#/$defs/point' }, q: { $ref: '#/$defs/point' } }),
    },
  },
  { name: '$ref in array', schema: { $defs: { item: obj({ n: int(0, 5) }) }, ...arr({ $ref: '#/$defs/item' }, 1, 3) } },
  { name: 'definitions (draft 7)', schema: { definitions: { s: str(3) }, ...obj({ a: { $ref: '#/definitions/s' } }) } },
  { name: 'pattern', schema: obj({ code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2}$' } }) },
  { name: 'pattern alternation', schema: { type: 'string', pattern: '^(yes|no|maybe)$' } },
  { name: 'pattern digits', schema: { type: 'string', pattern: '^[0-9]{1,4}$' } },
  { name: 'format uuid', schema: { type: 'string', format: 'uuid' } },
  { name: 'format date-time', schema: obj({ at: { type: 'string', format: 'date-time' } }) },
  { name: 'format date', schema: obj({ on: { type: 'string', format: 'date' } }) },
  { name: 'additionalProperties typed', schema: { type: 'object', additionalProperties: int(0, 9), maxProperties: 2 } },
  { name: 'additionalProperties false', schema: obj({ only: { type: 'boolean' } }) },
  {
    name: 'properties + additional',
    schema: {
      type: 'object',
      properties: { k: int() },
      required: ['k'],
      additionalProperties: { type: 'boolean' },
      maxProperties: 2,
    },
  },
  { name: 'enum in object', schema: obj({ unit: { enum: ['c', 'f'] }, value: num(-50, 50) }) },
  { name: 'array of enums', schema: arr({ enum: ['a', 'b', 'c'] }, 1, 4) },
  { name: 'nested arrays', schema: arr(arr(int(0, 9), 0, 2), 0, 2) },
  {
    name: 'tool call arguments',
    schema: obj({ location: str(12), unit: { enum: ['celsius', 'fahrenheit'] } }, ['location']),
  },
  {
    name: 'person record',
    schema: obj({
      first: str(6),
      last: str(6),
      age: int(0, 99),
      born: { type: 'string', format: 'date' },
      tags: arr(str(4), 0, 2),
    }),
  },
  {
    name: 'order',
    schema: obj({
      id: int(1, 9999),
      items: arr(obj({ sku: str(6), qty: int(1, 9) }), 1, 2),
      paid: { type: 'boolean' },
    }),
  },
  {
    name: 'recursive tree',
    schema: {
      $defs: {
        node: {
          type: 'object',
          properties: { v: int(0, 9), kids: arr({ $ref: '#/$defs/node' }, 0, 1) },
          required: ['v'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/node',
    },
  },
  {
    name: 'anyOf with ref',
    schema: {
      $defs: { a: obj({ a: int() }), b: obj({ b: str(3) }) },
      anyOf: [{ $ref: '#/$defs/a' }, { $ref: '#/$defs/b' }],
    },
  },
  {
    name: 'const and enum mix',
    schema: obj({ version: { const: 2 }, mode: { enum: ['fast', 'slow'] }, ratio: num(0, 1) }),
  },
  {
    name: 'twenty properties',
    schema: obj(
      Object.fromEntries(
        Array.from({ length: 20 }, (_, i) => [
          `f${i}`,
          i % 3 === 0 ? str(4) : i % 3 === 1 ? int(0, 9) : { type: 'boolean' },
        ]),
      ),
    ),
  },
  {
    name: 'classification',
    schema: obj({ label: { enum: ['positive', 'negative', 'neutral'] }, confidence: num(0, 1) }),
  },
  { name: 'string or array', schema: { anyOf: [str(5), arr(str(3), 1, 2)] } },
  {
    name: 'integer without minimum',
    schema: obj({ n: { type: 'integer', maximum: 99, minimum: -99 }, m: { type: 'number', maximum: 5, minimum: -5 } }),
  },
];
