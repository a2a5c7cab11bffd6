/** Where a JSON schema holds further schemas, so that a pass over one reaches every node. */

export type Schema = Record<string, unknown>;

/** Keywords whose value maps names to schemas. */
const SCHEMA_MAPS = ['properties', '$defs', 'definitions', 'patternProperties', 'dependentSchemas'];
/** Keywords whose value lists schemas. */
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
/** Keywords whose value is one schema. */
const SCHEMA_VALUES = [
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'not',
  'contains',
  'if',
  'then',
  'else',
  'propertyNames',
];

export function isSchemaObject(value: unknown): value is Schema {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

/** A map key as a path step: `.name`, or `["odd key"]`. */
const step = (key: string) => (/^[A-Za-z_$][\w$-]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/** Each subschema of a node with the path step that leads to it (`.properties.a`, `.anyOf[1]`, `.items`). */
export function subschemas(s: Schema): [path: string, child: unknown][] {
  const out: [string, unknown][] = [];
  for (const key of SCHEMA_MAPS) {
    const m = s[key];
    if (isSchemaObject(m)) for (const [k, v] of Object.entries(m)) out.push([`.${key}${step(k)}`, v]);
  }
  for (const key of SCHEMA_LISTS) {
    const list = s[key];
    if (Array.isArray(list)) for (const [i, v] of list.entries()) out.push([`.${key}[${i}]`, v]);
  }
  for (const key of SCHEMA_VALUES) if (key in s) out.push([`.${key}`, s[key]]);
  return out;
}

/** A copy of the node with `f` applied to each of its subschemas (the node itself is not changed). */
export function mapSubschemas(s: Schema, f: (child: unknown) => unknown): Schema {
  const out: Schema = { ...s };
  for (const key of SCHEMA_MAPS) {
    const m = s[key];
    if (isSchemaObject(m)) out[key] = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, f(v)]));
  }
  for (const key of SCHEMA_LISTS) if (Array.isArray(s[key])) out[key] = (s[key] as unknown[]).map(f);
  for (const key of SCHEMA_VALUES) if (key in s) out[key] = f(s[key]);
  return out;
}
