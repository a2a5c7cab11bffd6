import { z } from 'zod';
import { badRequest } from '../errors.ts';
import { ignoredOpenAiFields } from '../ignored-fields.ts';
import type { ChatMessage } from '../models.ts';
import { textFormat } from '../structured-output.ts';
import { type Tool, type ToolChoice, toolSchema } from '../tool-requests.ts';
import { parsedArguments } from './chat-message.ts';
import { cacheSalt, keepAlive, reasoningEffort, unsupported } from './schemas.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();
const MAX_ITEMS = 4096;

/** POST /v1/responses: the fields of OpenAI's Responses API that pagoda honours. */
export const responsesRequest = z.strictObject({
  model: z.string().min(1).max(1024),
  input: z.union([
    z.string(),
    z
      .array(z.looseObject({ type: opt(z.string()) }))
      .min(1)
      .max(MAX_ITEMS),
  ]),
  instructions: opt(z.string()),
  max_output_tokens: opt(z.number().int().min(1)),
  temperature: opt(z.number().min(0).max(2)),
  top_p: opt(z.number().gt(0).max(1)),
  stream: opt(z.boolean()),
  tools: opt(z.array(z.looseObject({ type: z.string() })).max(256)),
  tool_choice: opt(
    z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string(), name: opt(z.string()) })]),
  ),
  parallel_tool_calls: opt(z.boolean()),
  text: opt(z.strictObject({ format: opt(textFormat), verbosity: z.unknown().optional() })),
  /** vLLM's extras: keyword arguments for the chat template (Qwen3's enable_thinking), and sampling. */
  chat_template_kwargs: opt(z.record(z.string(), z.unknown())),
  top_k: opt(z.number().int().min(-1)),
  min_p: opt(z.number().min(0).max(1)),
  seed: opt(
    z
      .number()
      .int()
      .min(-(2 ** 53) + 1)
      .max(2 ** 53 - 1),
  ),
  repetition_penalty: opt(z.number().gt(0).max(10)),
  presence_penalty: opt(z.number().min(-2).max(2)),
  frequency_penalty: opt(z.number().min(-2).max(2)),
  ...ignoredOpenAiFields([
    'truncation',
    'stream_options',
    'prompt_cache_retention',
    'prompt_cache_options',
    'context_management',
    'moderation',
  ]),
  /** `effort` reaches the template as chat's `reasoning_effort` does; a summary is not made. */
  reasoning: opt(
    z.looseObject({
      effort: reasoningEffort,
      summary: z.unknown().optional(),
    }),
  ),
  /** The stored response this one goes on from (response-store.ts): its conversation comes before `input`. */
  previous_response_id: opt(z.string().min(1).max(256)),
  /** Whether to keep the response for GET and `previous_response_id` (the API's default: yes). */
  store: opt(z.boolean()),
  conversation: unsupported('a stored conversation', 'go on from a response with previous_response_id'),
  /** Answer at once as queued and generate on (background-run.ts); poll with GET, cancel with POST …/cancel. */
  background: opt(z.boolean()),
  prompt: unsupported('a stored prompt'),
  /**
   * Alternatives per token (0-20); with `include` naming message.output_text.logprobs, or alone, the output text's
   * parts carry their tokens' logprobs.
   */
  top_logprobs: opt(z.number().int().min(0).max(20)),
  /** Extra output to include: message.output_text.logprobs is honoured; the others name what pagoda has none of. */
  include: opt(z.array(z.string().max(100)).max(32)),
  keep_alive: keepAlive,
  cache_salt: cacheSalt,
});
export type ResponsesRequest = z.output<typeof responsesRequest>;

/** An input message's text: a string, or its text parts joined (images and files are refused, naming the part). */
function textOf(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`${where}: expected a string or a list of text parts`, where);
  return content
    .map((p: { type?: unknown; text?: unknown; refusal?: unknown }, j) => {
      // An earlier answer sent back as it came: its text parts, and a refusal's text.
      const text = p?.type === 'refusal' ? p.refusal : p?.text;
      const ok = ['input_text', 'output_text', 'text', 'refusal'].includes(String(p?.type)) && typeof text === 'string';
      if (!ok)
        throw badRequest(`${where}[${j}]: type "${p?.type}" is not supported (text parts only)`, `${where}[${j}]`);
      return text as string;
    })
    .join('\n');
}

const field = (item: Record<string, unknown>, key: string, where: string): string => {
  const v = item[key];
  if (typeof v !== 'string') throw badRequest(`${where}.${key}: expected a string`, `${where}.${key}`);
  return v;
};

/** How many alternatives per token the output text's logprobs carry, or null when they are not asked for. */
export function responsesLogprobs(body: ResponsesRequest): number | null {
  const asked = body.include?.includes('message.output_text.logprobs') || body.top_logprobs != null;
  return asked ? (body.top_logprobs ?? 0) : null;
}

/** A request's `input` as a list of items (a string is one user message). */
export function inputItems(body: ResponsesRequest): Record<string, unknown>[] {
  return typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input;
}

/**
 * The conversation of Responses input items (an earlier response's, then the request's), as chat templates read
 * it: `instructions` first as the system message, messages (developer is system), a model's earlier function calls
 * on its assistant turn (merged into the turn they follow), their outputs as tool messages under the function's name,
 * and earlier reasoning on the next assistant turn.
 */
export function responsesMessages(
  instructions: string | null | undefined,
  items: unknown[],
  /** Items before the request's own (an earlier response's), left out of the numbers errors give for `input`. */
  earlier = 0,
): ChatMessage[] {
  const out: ChatMessage[] = instructions ? [{ role: 'system', content: instructions }] : [];
  const names = new Map<string, string>();
  let reasoning = '';
  const assistantTurn = (): ChatMessage => {
    const last = out.at(-1);
    if (last?.role === 'assistant') return last;
    const turn: ChatMessage = { role: 'assistant', content: '' };
    out.push(turn);
    return turn;
  };
  for (const [i, raw] of items.entries()) {
    const item = raw as Record<string, unknown>;
    const where = `input[${i - earlier}]`;
    const type = item.type ?? 'message';
    if (type === 'message') {
      const role = item.role;
      if (role !== 'user' && role !== 'system' && role !== 'developer' && role !== 'assistant') {
        throw badRequest(`${where}.role: "${role}" is not one of user, system, developer, assistant`, `${where}.role`);
      }
      const message: ChatMessage = {
        role: role === 'developer' ? 'system' : role,
        content: textOf(item.content, `${where}.content`),
      };
      if (role === 'assistant' && reasoning) [message.reasoning_content, reasoning] = [reasoning, ''];
      out.push(message);
    } else if (type === 'function_call') {
      const [callId, name] = [field(item, 'call_id', where), field(item, 'name', where)];
      names.set(callId, name);
      const turn = assistantTurn();
      if (reasoning) [turn.reasoning_content, reasoning] = [reasoning, ''];
      const call = {
        id: callId,
        type: 'function',
        function: { name, arguments: parsedArguments(field(item, 'arguments', where)) },
      };
      turn.tool_calls = [...((turn.tool_calls as unknown[] | undefined) ?? []), call];
    } else if (type === 'function_call_output') {
      const callId = field(item, 'call_id', where);
      const message: ChatMessage = {
        role: 'tool',
        content: textOf(item.output, `${where}.output`),
        tool_call_id: callId,
      };
      const name = names.get(callId);
      if (name) message.name = name;
      out.push(message);
    } else if (type === 'reasoning') {
      const list = (key: string): unknown[] => {
        const v = item[key];
        if (v == null) return [];
        if (!Array.isArray(v)) throw badRequest(`${where}.${key}: expected a list`, `${where}.${key}`);
        return v;
      };
      reasoning += [...list('content'), ...list('summary')]
        .map((p) => (p as { text?: unknown })?.text)
        .filter((t) => typeof t === 'string')
        .join('\n');
    } else {
      throw badRequest(
        `${where}: item type "${type}" is not supported (message, function_call, function_call_output, reasoning)`,
        where,
      );
    }
  }
  if (!out.some((m) => m.role !== 'system')) {
    throw badRequest('input: no message to answer (give a user message, or an earlier turn to go on from)', 'input');
  }
  return out;
}

/** The request's function tools in chat's shape; any other tool type is refused, naming it. */
export function responsesTools(body: ResponsesRequest): Tool[] | undefined {
  return body.tools?.map((t, i) => {
    if (t.type !== 'function') {
      throw badRequest(`tools[${i}]: type "${t.type}" is not supported (function tools only)`, `tools[${i}]`);
    }
    const { type, ...fn } = t;
    const parsed = toolSchema.safeParse({ type, function: fn });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const path = issue.path.filter((k) => k !== 'function');
      throw badRequest(`tools[${i}]${path.map((k) => `.${String(k)}`).join('')}: ${issue.message}`, `tools[${i}]`);
    }
    return parsed.data;
  });
}

/** tool_choice in chat's shape: a named function becomes `{type: 'function', function: {name}}`. */
export function responsesToolChoice(body: ResponsesRequest): ToolChoice | undefined {
  const choice = body.tool_choice;
  if (choice == null || typeof choice === 'string') return choice ?? undefined;
  if (choice.type === 'function' && !choice.name) {
    throw badRequest('tool_choice.name: a function tool_choice names its function', 'tool_choice.name');
  }
  if (choice.type !== 'function' || !choice.name) {
    throw badRequest(
      `tool_choice: type "${choice.type}" is not supported (none, auto, required or a function)`,
      'tool_choice',
    );
  }
  return { type: 'function', function: { name: choice.name } };
}
