import * as ajvModule from 'ajv';

// ajv is CommonJS; under Node's ESM interop its class is `default.default`, TypeScript sees it as `default`.
type AjvClass = typeof ajvModule.Ajv;
const Ajv: AjvClass =
  (ajvModule.default as unknown as { default?: AjvClass }).default ?? (ajvModule.default as unknown as AjvClass);
type Ajv = InstanceType<AjvClass>;

/** A JSON Schema validator (ajv) with the string formats the grammar engine constrains checked too. */
export function jsonValidator(): Ajv {
  const ajv = new Ajv({ strict: false });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  ajv.addFormat('date', /^\d{4}-\d\d-\d\d$/);
  ajv.addFormat('email', /^[^@\s]+@[^@\s]+$/);
  return ajv;
}

/** Parses `text` and validates it against `schema`; null when it is valid, else why not. */
export function schemaViolation(ajv: Ajv, schema: Record<string, unknown>, text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON (${(err as Error).message}): ${JSON.stringify(text)}`;
  }
  const validate = ajv.compile(schema);
  return validate(value) ? null : `${ajv.errorsText(validate.errors)}: ${text}`;
}
