import type { CompletionDelta, FinishReason } from '../../engine/types.ts';
import type { CallEvent, ToolCall } from '../../tools/call-log.ts';
import type { ToolCallsEnd } from '../../tools/tool-parser.ts';
import { type ChatOutputMode, ChatOutputParser, toolCallId } from '../chat-output.ts';
import type { ChatMessage } from '../models.ts';
import { chatLogprobs } from './common.ts';
import type { ChatRequest } from './schemas.ts';

/** JSON text as an object when it parses (templates iterate over arguments), else the text. */
export function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Request messages as templates read them: developer is system, text parts joined by newlines (as vLLM does),
 * earlier calls with their arguments parsed (Jinja templates write `arguments | tojson`, as vLLM passes them),
 * reasoning under `reasoning_content`.
 */
export function toMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((m) => {
    const out: ChatMessage = {
      role: m.role === 'developer' ? 'system' : m.role,
      content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join('\n'),
    };
    if (m.name) out.name = m.name;
    if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
    const reasoning = m.reasoning_content ?? m.reasoning;
    if (reasoning) out.reasoning_content = reasoning;
    if (m.tool_calls?.length) {
      out.tool_calls = m.tool_calls.map((c) => ({
        id: c.id ?? undefined,
        type: 'function',
        function: { name: c.function.name, arguments: parsedArguments(c.function.arguments) },
      }));
    }
    return out;
  });
}

/** An answer's calls as OpenAI's tool_calls; one cut by the token limit as OpenAI gives it, arguments as far as they got. */
function openaiCalls(end: Pick<ToolCallsEnd, 'calls' | 'cut'>) {
  const calls = end.calls.map((c) => ({ name: c.name, arguments: c.argumentsJson }));
  if (end.cut?.name) calls.push({ name: end.cut.name, arguments: end.cut.argumentsJson });
  return calls.map((fn) => ({ id: toolCallId(), type: 'function' as const, function: fn }));
}

/** Streamed tool_calls entries: a call opens with its id, type and name, then its arguments' text comes in pieces. */
function toolCallDeltas(events: CallEvent[]) {
  return events.flatMap((e) => {
    if (e.type === 'start') {
      const opened = { index: e.index, id: toolCallId(), type: 'function' as const };
      return [{ ...opened, function: { name: e.name, arguments: '' } }];
    }
    return e.type === 'arguments' ? [{ index: e.index, function: { arguments: e.text } }] : [];
  });
}

/** A completion that stopped on its own with calls ends in `tool_calls`, unless the request named the function. */
function finishReason(
  reason: FinishReason | null,
  calls: ToolCall[],
  mode: ChatOutputMode,
): FinishReason | 'tool_calls' | null {
  return calls.length > 0 && reason === 'stop' && !mode.namedTool ? 'tool_calls' : reason;
}

/**
 * The streamed chunks of each choice: reasoning_content and content deltas, and its tool calls as they are written
 * (one entry a chunk), then the finish.
 */
export function chatChunker(mode: ChatOutputMode): (d: CompletionDelta) => Record<string, unknown>[] {
  const parsers = new Map<number, ChatOutputParser>();
  return (d) => {
    let parser = parsers.get(d.index);
    if (!parser) parsers.set(d.index, (parser = new ChatOutputParser(mode, true)));
    const out: Record<string, unknown>[] = [];
    const delta = (fields: Record<string, unknown>, lp: unknown = null) =>
      out.push({ index: d.index, delta: fields, logprobs: lp, finish_reason: null });
    const calls = (events: CallEvent[]) => {
      for (const call of toolCallDeltas(events)) delta({ tool_calls: [call] });
    };
    const part = parser.push(d.text);
    const lp = d.logprobs?.length ? { content: chatLogprobs(d.logprobs) } : null;
    if (part.reasoning) delta({ reasoning_content: part.reasoning });
    if (part.content || lp) delta({ content: part.content }, lp);
    calls(part.events);
    if (d.finishReason) {
      const end = parser.finish();
      if (end.reasoning) delta({ reasoning_content: end.reasoning });
      if (end.content) delta({ content: end.content });
      calls(end.events);
      out.push({
        index: d.index,
        delta: {},
        logprobs: null,
        finish_reason: finishReason(d.finishReason, end.calls, mode),
        stop_reason: d.stopReason,
      });
    }
    return out;
  };
}

/** A whole choice's message (content, reasoning_content, tool_calls; refusal and annotations as OpenAI's) and finish reason. */
export function chatMessage(mode: ChatOutputMode, role: string, text: string, reason: FinishReason | null) {
  const parser = new ChatOutputParser(mode);
  const part = parser.push(text);
  const end = parser.finish();
  const content = part.content + end.content;
  const calls = openaiCalls(end);
  const message: Record<string, unknown> = {
    role,
    content: content || (calls.length ? null : ''),
    // OpenAI always writes these; a model here never refuses apart from its text, nor cites.
    refusal: null,
    annotations: [],
  };
  if (mode.reasoning) message.reasoning_content = part.reasoning + end.reasoning || null;
  if (calls.length > 0) message.tool_calls = calls;
  return { message, finish_reason: finishReason(reason, end.calls, mode) };
}
