import { isSchemaObject, type Schema, subschemas } from './schema-walk.ts';

/**
 * JSON Schema keywords xgrammar 0.1.27 compiles as if they were absent, so its output can break them: a schema using
 * one is refused rather than half-enforced (vLLM's xgrammar backend refuses such schemas too). Checked against the
 * EBNF it makes of each: `multipleOf`, `uniqueItems`, `not`, `contains` and its counts, `if`/`then`/`else` and the
 * dependency keywords leave the grammar unchanged; `allOf` with more than one subschema allows any JSON.
 */
const IGNORED = [
  'multipleOf',
  'not',
  'contains',
  'minContains',
  'maxContains',
  'if',
  'then',
  'else',
  'dependentSchemas',
  'dependentRequired',
  'dependencies',
];

/** A string's keywords that xgrammar drops when another is present (`format` wins over all, `pattern` over lengths). */
const OVERRIDDEN: [winner: string, dropped: string[]][] = [
  ['format', ['pattern', 'minLength', 'maxLength']],
  ['pattern', ['minLength', 'maxLength']],
];

/** A keyword the grammar engine would ignore: where it is (a path inside the schema, '' at its root) and why. */
export interface UnsupportedKeyword {
  keyword: string;
  path: string;
  /** The keyword that makes this one ignored, if it is ignored only beside another. */
  besides?: string;
}

function unsupportedHere(s: Schema): Omit<UnsupportedKeyword, 'path'> | null {
  const keyword = IGNORED.find((k) => k in s);
  if (keyword) return { keyword };
  if (s.uniqueItems === true) return { keyword: 'uniqueItems' };
  if (Array.isArray(s.allOf) && s.allOf.length > 1) return { keyword: 'allOf' };
  for (const [winner, dropped] of OVERRIDDEN) {
    const lost = winner in s ? dropped.find((k) => k in s) : undefined;
    if (lost) return { keyword: lost, besides: winner };
  }
  return null;
}

/** The first keyword of a schema (depth first) that xgrammar would ignore, or null when it enforces them all. */
export function unsupportedKeyword(schema: unknown, path = ''): UnsupportedKeyword | null {
  if (!isSchemaObject(schema)) return null;
  const here = unsupportedHere(schema);
  if (here) return { ...here, path };
  for (const [step, child] of subschemas(schema)) {
    const found = unsupportedKeyword(child, path + step);
    if (found) return found;
  }
  return null;
}

/** The problem in words: `"multipleOf" at properties.m`, `"minLength" beside "pattern" at the root`. */
export function describeUnsupported(u: UnsupportedKeyword): string {
  const what = u.besides ? `"${u.keyword}" beside "${u.besides}"` : `"${u.keyword}"`;
  const where = u.path ? u.path.replace(/^\./, '') : 'the root';
  return `${what} at ${where} is not supported by the grammar engine`;
}
