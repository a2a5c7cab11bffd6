import { z } from 'zod';
import { describeUnsupported, unsupportedKeyword } from '../grammar/schema-support.ts';
import type { GrammarSpec } from '../grammar/spec.ts';
import { ApiError } from './errors.ts';

const MAX_CHOICES = 1024;
const MAX_TEXT = 1 << 20;

const schemaValue = z.union([z.record(z.string(), z.unknown()), z.boolean(), z.string().max(MAX_TEXT)]);
const choices = z.array(z.string().max(MAX_TEXT)).min(1).max(MAX_CHOICES);

/** OpenAI's response_format: text, json_object, or json_schema { name, schema, strict }. */
export const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      // OpenAI and vLLM require it.
      name: z.string().min(1).max(256),
      schema: schemaValue.nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

/** vLLM's structured_outputs object (its newer spelling of the guided_* fields). */
const structuredOutputs = z.strictObject({
  json: schemaValue.nullish(),
  regex: z.string().max(MAX_TEXT).nullish(),
  choice: choices.nullish(),
  grammar: z.string().max(MAX_TEXT).nullish(),
  json_object: z.boolean().nullish(),
  disable_any_whitespace: z.boolean().nullish(),
  disable_additional_properties: z.boolean().nullish(),
  whitespace_pattern: z.string().max(256).nullish(),
});

/** The structured-output fields of both OpenAI routes (vLLM's extras included). */
export const structuredOutputFields = {
  guided_json: schemaValue.nullish(),
  guided_regex: z.string().max(MAX_TEXT).nullish(),
  guided_choice: choices.nullish(),
  guided_grammar: z.string().max(MAX_TEXT).nullish(),
  guided_decoding_backend: z.string().max(64).nullish(),
  guided_whitespace_pattern: z.string().max(256).nullish(),
  structured_outputs: structuredOutputs.nullish(),
};

type Fields = { [K in keyof typeof structuredOutputFields]?: z.output<(typeof structuredOutputFields)[K]> } & {
  response_format?: z.output<typeof responseFormat> | null;
};

/** A schema given as JSON text (vLLM accepts both) parsed, or a 400 naming the field. */
function schemaOf(value: unknown, field: string): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new ApiError(400, `${field}: not valid JSON (${(err as Error).message})`, field);
  }
}

/** A 400 naming the field and the keyword's place when the grammar engine would ignore part of the schema. */
export function checkSchemaSupported(schema: unknown, field: string): void {
  const found = unsupportedKeyword(schema);
  if (found) throw new ApiError(400, `${field}: ${describeUnsupported(found)}`, field);
}

/** The grammar an OpenAI-style request asks for, if any; more than one way at once is a 400. */
export function openaiGrammar(body: Fields): GrammarSpec | undefined {
  const found: [string, GrammarSpec][] = [];
  const rf = body.response_format;
  if (rf?.type === 'json_object') found.push(['response_format', { type: 'json_object' }]);
  if (rf?.type === 'json_schema') {
    const schema = rf.json_schema.schema;
    // OpenAI: a json_schema without a schema allows any JSON object.
    found.push([
      'response_format',
      schema == null ? { type: 'json_object' } : jsonSchema(schema, 'response_format.json_schema.schema'),
    ]);
  }
  if (body.guided_json != null) found.push(['guided_json', jsonSchema(body.guided_json, 'guided_json')]);
  if (body.guided_regex != null) found.push(['guided_regex', { type: 'regex', pattern: body.guided_regex }]);
  if (body.guided_choice != null) found.push(['guided_choice', { type: 'choice', choices: body.guided_choice }]);
  if (body.guided_grammar != null) found.push(['guided_grammar', { type: 'grammar', grammar: body.guided_grammar }]);
  const so = body.structured_outputs;
  if (so) {
    const json = so.json;
    if (json != null) found.push(['structured_outputs.json', jsonSchema(json, 'structured_outputs.json')]);
    if (so.regex != null) found.push(['structured_outputs.regex', { type: 'regex', pattern: so.regex }]);
    if (so.choice != null) found.push(['structured_outputs.choice', { type: 'choice', choices: so.choice }]);
    if (so.grammar != null) found.push(['structured_outputs.grammar', { type: 'grammar', grammar: so.grammar }]);
    if (so.json_object) found.push(['structured_outputs.json_object', { type: 'json_object' }]);
  }
  if (found.length > 1) {
    const names = found.map(([f]) => f).join(', ');
    throw new ApiError(400, `only one kind of structured output per request (got ${names})`, found[1]![0]);
  }
  return found[0]?.[1];
}

/** The Responses API's `text.format`: plain text, any JSON object, or a named JSON schema (its fields alongside). */
export const textFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    name: z.string().max(256).nullish(),
    schema: schemaValue.nullish(),
    strict: z.boolean().nullish(),
  }),
]);

/** The grammar a Responses request's `text.format` asks for; none for plain text. */
export function responsesGrammar(format: z.output<typeof textFormat> | null | undefined): GrammarSpec | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object' || format.schema == null) return { type: 'json_object' };
  return jsonSchema(format.schema, 'text.format.schema');
}

/**
 * A schema field (an object, or its JSON text) as a spec: `true` (any value) is any JSON object here, as OpenAI's
 * json_object; `false` can match nothing; keywords the grammar engine would ignore are refused.
 */
export function jsonSchema(value: unknown, field: string): GrammarSpec {
  const schema = schemaOf(value, field);
  if (schema === true) return { type: 'json_object' };
  if (schema === false) throw new ApiError(400, `${field}: a JSON schema of false matches no output`, field);
  checkSchemaSupported(schema, field);
  return { type: 'json_schema', schema };
}

/** Ollama's `format`: "json" or a JSON schema object. */
export const ollamaFormat = z.union([z.literal('json'), z.literal(''), z.record(z.string(), z.unknown())]);

export function ollamaGrammar(format: z.output<typeof ollamaFormat> | null | undefined): GrammarSpec | undefined {
  if (format == null || format === '') return undefined;
  return format === 'json' ? { type: 'json_object' } : jsonSchema(format, 'format');
}
