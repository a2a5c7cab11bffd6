import { isSchemaObject, mapSubschemas, type Schema } from './schema-walk.ts';

/**
 * Rewrites the numeric bounds of a JSON schema into forms xgrammar 0.1.27 compiles correctly. Its range grammars
 * let a boundary value take any fraction (`maximum: 1` admits 1.69), read a one-sided integer bound wrongly
 * (`minimum: -5` admits a bare "-", `maximum: -3` admits -1) and garble fractional bounds. Two-sided integer ranges
 * are exact, and a number range's error is confined to its boundary values; so a bounded number becomes the integers
 * of its range or a fraction whose range stops one short of each boundary the error would cross, and a one-sided
 * bound gets a far partner. Every output then satisfies the original schema (some values near fractional or
 * exclusive bounds can no longer be produced).
 */

const FAR = 1e9;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The integers a node's bounds allow, or null when it has no bound. */
function integerRange(s: Schema): { lo: number; hi: number } | null {
  const min = num(s.minimum);
  const max = num(s.maximum);
  const exMin = num(s.exclusiveMinimum);
  const exMax = num(s.exclusiveMaximum);
  if (min === undefined && max === undefined && exMin === undefined && exMax === undefined) return null;
  const los = [min === undefined ? -FAR : Math.ceil(min), exMin === undefined ? -FAR : Math.floor(exMin) + 1];
  const his = [max === undefined ? FAR : Math.floor(max), exMax === undefined ? FAR : Math.ceil(exMax) - 1];
  return { lo: Math.max(...los), hi: Math.min(...his) };
}

function rewriteNumeric(s: Schema): Schema {
  const range = integerRange(s);
  if (!range || range.lo > range.hi) return s;
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum, type, ...rest } = s;
  const ints = { type: 'integer', minimum: range.lo, maximum: range.hi };
  if (type === 'integer') return { ...rest, ...ints };
  const fracLo = range.lo < 0 ? range.lo + 1 : range.lo;
  const fracHi = range.hi >= 0 ? range.hi - 1 : range.hi;
  if (fracLo > fracHi) return { ...rest, ...ints };
  return { ...rest, anyOf: [ints, { type: 'number', minimum: fracLo, maximum: fracHi }] };
}

/** The schema with every numeric range rewritten (a new object; the input is not changed). */
export function rewriteNumericBounds(schema: unknown): unknown {
  if (!isSchemaObject(schema)) return schema;
  const s = mapSubschemas(schema, rewriteNumericBounds);
  return s.type === 'number' || s.type === 'integer' ? rewriteNumeric(s) : s;
}
