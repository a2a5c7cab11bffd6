import { z } from 'zod';
import type { GrammarSpec } from '../../grammar/spec.ts';
import type { ChatAsk } from '../chat-request.ts';
import { badRequest } from '../errors.ts';
import type { ChatMessage } from '../models.ts';
import { keepAlive, unsupported } from '../openai/schemas.ts';
import { jsonSchema } from '../structured-output.ts';
import { type Tool, type ToolChoice, toolSchema } from '../tool-requests.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();
const block = z.looseObject({ type: z.string() });
const content = z.union([z.string(), z.array(block).max(4096)]);
const jsonFormat = z.looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) });

/** What /v1/messages and /v1/messages/count_tokens share: the conversation, its tools and how to think. */
const conversation = {
  model: z.string().min(1).max(1024),
  messages: z
    .array(z.looseObject({ role: z.enum(['user', 'assistant', 'system']), content }))
    .min(1)
    .max(4096),
  system: opt(content),
  tools: opt(z.array(z.looseObject({ name: z.string(), type: opt(z.string()) })).max(256)),
  tool_choice: opt(
    z.looseObject({
      type: z.enum(['auto', 'any', 'tool', 'none']),
      name: opt(z.string()),
      disable_parallel_tool_use: opt(z.boolean()),
    }),
  ),
  thinking: opt(z.looseObject({ type: z.enum(['enabled', 'disabled', 'adaptive', 'between_tools']) })),
  output_config: opt(z.looseObject({ format: opt(jsonFormat), effort: z.unknown().optional() })),
  /** The beta API's name for output_config.format. */
  output_format: opt(jsonFormat),
  /** Hints for Anthropic's own service (caching, billing, routing): nothing to do here. */
  cache_control: z.unknown().optional(),
  metadata: z.unknown().optional(),
  service_tier: z.unknown().optional(),
  speed: z.unknown().optional(),
  inference_geo: z.unknown().optional(),
  user_profile_id: z.unknown().optional(),
  workspace_id: z.unknown().optional(),
  diagnostics: z.unknown().optional(),
  context_management: z.unknown().optional(),
  betas: z.unknown().optional(),
  container: unsupported('container'),
  mcp_servers: unsupported('mcp_servers'),
  keep_alive: keepAlive,
};

/** POST /v1/messages: Anthropic's Messages API (sampling fields that older clients send included). */
export const messagesRequest = z.strictObject({
  ...conversation,
  max_tokens: z.number().int().min(1),
  stop_sequences: opt(z.array(z.string().min(1).max(1000)).max(16)),
  stream: opt(z.boolean()),
  temperature: opt(z.number().min(0).max(1)),
  top_p: opt(z.number().gt(0).max(1)),
  top_k: opt(z.number().int().min(-1)),
});
export type MessagesRequest = z.output<typeof messagesRequest>;

/** POST /v1/messages/count_tokens: the same conversation, nothing generated. */
export const countTokensRequest = z.strictObject(conversation);
type Conversation = z.output<typeof countTokensRequest>;

/** A block list's text (text blocks only; images, documents and the like are refused, naming the block). */
function textOf(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) throw badRequest(`${where}: expected a string or a list of text blocks`, where);
  return value
    .map((b: { type?: unknown; text?: unknown }, j) => {
      if (b?.type !== 'text' || typeof b.text !== 'string') {
        throw badRequest(`${where}[${j}]: type "${b?.type}" is not supported (text only)`, `${where}[${j}]`);
      }
      return b.text;
    })
    .join('\n');
}

/**
 * The conversation as chat templates read it: `system` (and system messages) first; a user turn's `tool_result`
 * blocks as tool messages (under the tool's name; a failed one's text marked) before its text; an assistant turn's
 * `thinking` as its reasoning, its text, and its `tool_use` blocks as tool calls. Text blocks are joined by new lines,
 * and consecutive turns of one role merged, as the API does.
 */
export function anthropicMessages(body: Conversation): ChatMessage[] {
  const system = [body.system ? textOf(body.system, 'system') : ''];
  const out: ChatMessage[] = [];
  const names = new Map<string, string>();
  const push = (m: ChatMessage) => {
    const last = out.at(-1);
    if (last?.role !== m.role || m.role === 'tool') {
      out.push(m);
      return;
    }
    last.content = [last.content, m.content].filter(Boolean).join('\n');
    if (m.reasoning_content) last.reasoning_content = `${last.reasoning_content ?? ''}${m.reasoning_content}`;
    if (m.tool_calls)
      last.tool_calls = [...((last.tool_calls as unknown[] | undefined) ?? []), ...(m.tool_calls as unknown[])];
  };
  for (const [i, m] of body.messages.entries()) {
    const where = `messages[${i}].content`;
    if (m.role === 'system') {
      system.push(textOf(m.content, where));
      continue;
    }
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    const text: string[] = [];
    const message: ChatMessage = { role: m.role, content: '' };
    for (const [j, raw] of blocks.entries()) {
      const b = raw as Record<string, unknown>;
      const at = `${where}[${j}]`;
      const str = (key: string) => {
        if (typeof b[key] !== 'string') throw badRequest(`${at}.${key}: expected a string`, `${at}.${key}`);
        return b[key] as string;
      };
      if (b.type === 'text') text.push(str('text'));
      else if (b.type === 'thinking' && m.role === 'assistant') {
        message.reasoning_content = `${message.reasoning_content ?? ''}${str('thinking')}`;
      } else if (b.type === 'redacted_thinking' && m.role === 'assistant') {
        // Anthropic's encrypted reasoning means nothing to another model.
      } else if (b.type === 'tool_use' && m.role === 'assistant') {
        const [id, name] = [str('id'), str('name')];
        names.set(id, name);
        const call = { id, type: 'function', function: { name, arguments: b.input ?? {} } };
        message.tool_calls = [...((message.tool_calls as unknown[] | undefined) ?? []), call];
      } else if (b.type === 'tool_result' && m.role === 'user') {
        const id = str('tool_use_id');
        const result = textOf(b.content ?? '', `${at}.content`);
        const tool: ChatMessage = { role: 'tool', tool_call_id: id, content: b.is_error ? `Error: ${result}` : result };
        const name = names.get(id);
        if (name) tool.name = name;
        push(tool);
      } else {
        throw badRequest(`${at}: a ${m.role} message's block type "${b.type}" is not supported`, at);
      }
    }
    message.content = text.join('\n');
    if (m.role === 'assistant' || text.length > 0 || blocks.length === 0) push(message);
  }
  const instructions = system.filter(Boolean).join('\n');
  return instructions ? [{ role: 'system', content: instructions }, ...out] : out;
}

/** The request's client tools in chat's shape; Anthropic's server tools (web search, code execution…) are refused. */
function anthropicTools(body: Conversation): Tool[] | undefined {
  return body.tools?.map((t, i) => {
    if (t.type != null && t.type !== 'custom') {
      throw badRequest(`tools[${i}]: type "${t.type}" is not supported (custom tools only)`, `tools[${i}]`);
    }
    const fn = { name: t.name, description: t.description, parameters: t.input_schema, strict: t.strict };
    const parsed = toolSchema.safeParse({ type: 'function', function: fn });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const key = issue.path.at(-1) === 'parameters' ? 'input_schema' : String(issue.path.at(-1));
      throw badRequest(`tools[${i}].${key}: ${issue.message}`, `tools[${i}]`);
    }
    return parsed.data;
  });
}

/** tool_choice in chat's shape: any is required, tool a named function. */
function anthropicToolChoice(body: Conversation): ToolChoice | undefined {
  const choice = body.tool_choice;
  if (!choice) return undefined;
  if (choice.type === 'any') return 'required';
  if (choice.type !== 'tool') return choice.type;
  if (!choice.name) throw badRequest('tool_choice.name: a tool tool_choice names its tool', 'tool_choice.name');
  return { type: 'function', function: { name: choice.name } };
}

/**
 * What the conversation asks of the chat machinery: messages, tools, the choice among them, `thinking` as the
 * template's `enable_thinking` (Qwen3's switch; templates without it ignore it), `output_config.format`. A last
 * assistant turn with text is a prefill the answer goes on from; one with nothing to go on from is left out.
 */
export function anthropicAsk(body: Conversation): ChatAsk {
  const thinking = body.thinking?.type;
  const format = body.output_config?.format ?? body.output_format;
  const field = body.output_config?.format ? 'output_config.format.schema' : 'output_format.schema';
  const structured: GrammarSpec | undefined = format ? jsonSchema(format.schema, field) : undefined;
  const messages = anthropicMessages(body);
  const last = messages.at(-1);
  const prefill = last?.role === 'assistant' && !last.tool_calls;
  if (prefill && !last.content) messages.pop();
  return {
    messages,
    tools: anthropicTools(body),
    toolChoice: anthropicToolChoice(body),
    parallelToolCalls: body.tool_choice?.disable_parallel_tool_use === true ? false : undefined,
    parametersField: (i) => `tools[${i}].input_schema`,
    kwargs: thinking === undefined ? undefined : { enable_thinking: thinking !== 'disabled' },
    continueFinalMessage: prefill ? 'if-possible' : undefined,
    structured,
  };
}
