import { z } from 'zod';
import { toolCallTag } from '../gotemplate/tool-call-tag.ts';
import type { GrammarSpec } from '../grammar/spec.ts';
import { FORCED_JSON, type ToolCallFormat, toolCallFormatOf } from '../tools/tool-parser.ts';
import { parameterTypesOf } from '../tools/xml-calls.ts';
import { ApiError } from './errors.ts';
import type { LoadedModel } from './models.ts';
import { checkSchemaSupported } from './structured-output.ts';

const MAX_TOOLS = 256;

/** A function tool, as OpenAI and Ollama send them. */
export const toolSchema = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'a tool name is 1-128 letters, digits, _ . or -'),
    description: z
      .string()
      .max(1 << 16)
      .nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});
export type Tool = z.output<typeof toolSchema>;
export const toolsSchema = z.array(toolSchema).max(MAX_TOOLS);

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string().max(128) }) }),
]);
export type ToolChoice = z.output<typeof toolChoiceSchema>;

/** What a request's tools mean for rendering, generation and parsing. */
export interface ResolvedTools {
  /** For the template (absent: render without tools). */
  templateTools?: Tool[];
  /** The output's tool-call format (null: do not look for calls). */
  format: ToolCallFormat | null;
  /** tool_choice "required" or a named function: the output is held to a JSON list of calls. */
  grammar?: GrammarSpec;
}

/** Where the request holds a tool's parameter schema, for errors (each API has its own shape of tool). */
export type ParametersField = (index: number) => string;
const CHAT_PARAMETERS: ParametersField = (i) => `tools[${i}].function.parameters`;

/** Whether a template writes the tools it is given (Jinja `tools`, Go `.Tools`). */
export function templateRendersTools(source: string): boolean {
  return /\btools\b/.test(source) || source.includes('.Tools');
}

/**
 * Checks a request's tools against the model's template and its tool_choice against its tools: 400 naming the
 * problem ("none" keeps them in the prompt and asks nothing of the template). "required" and a named function become a grammar (a JSON list of calls to the allowed functions), so the
 * calls are always well formed; a parameter schema with keywords the grammar engine would ignore is refused.
 */
export function resolveTools(
  model: Pick<LoadedModel, 'chatTemplate' | 'toolCallFormat'>,
  modelName: string,
  tools: Tool[] | null | undefined,
  choice: ToolChoice | null | undefined,
  parallel: boolean | null | undefined,
  parametersField: ParametersField = CHAT_PARAMETERS,
): ResolvedTools {
  if (!tools?.length) {
    if (choice && choice !== 'none' && choice !== 'auto') {
      throw new ApiError(400, 'tool_choice needs tools', 'tool_choice');
    }
    return { format: null };
  }
  const template = model.chatTemplate;
  const renders = template !== null && templateRendersTools(template.source);
  // "none": the tools stay in the prompt (as vLLM keeps them), but the answer is not read for calls.
  if (choice === 'none') return { templateTools: renders ? tools : undefined, format: null };
  if (!renders) {
    throw new ApiError(400, `the chat template of model "${modelName}" cannot render tools`, 'tools');
  }
  const named = typeof choice === 'object' && choice ? choice.function.name : null;
  if (named !== null && !tools.some((t) => t.function.name === named)) {
    throw new ApiError(400, `tool_choice names "${named}", which is not among the tools`, 'tool_choice');
  }
  if (named === null && choice !== 'required') {
    const format = model.toolCallFormat ??
      toolCallFormatOf(template.source, toolCallTag(template.source)) ?? { ...FORCED_JSON, name: 'json' };
    return { templateTools: tools, format: { ...format, parameterTypes: parameterTypesOf(tools) } };
  }
  const allowed = named === null ? tools : tools.filter((t) => t.function.name === named);
  // The grammar holds the arguments to these schemas: what it would ignore is refused, as in structured output.
  for (const t of allowed) checkSchemaSupported(t.function.parameters, parametersField(tools.indexOf(t)));
  const call = (t: Tool) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: 'object' } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  });
  const single = named !== null || parallel === false;
  const schema = {
    type: 'array',
    items: allowed.length === 1 ? call(allowed[0]!) : { anyOf: allowed.map(call) },
    minItems: 1,
    ...(single ? { maxItems: 1 } : {}),
  };
  return { templateTools: tools, format: FORCED_JSON, grammar: { type: 'json_schema', schema } };
}
