import type { FastifyInstance } from 'fastify';
import { reasoningMode } from '../chat-output.ts';
import { encodeOllamaChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { type ServerContext, withModel } from '../generation.ts';
import type { ChatMessage } from '../models.ts';
import { resolveTools } from '../tool-requests.ts';
import { parseBody } from '../validate.ts';
import { keepAliveMs, thinkOption } from './options.ts';
import { generateAndRespond, loadOnly, type PieceExtra, unloadedAlready } from './respond.ts';
import { chatRequest } from './schemas.ts';

/** Ollama's assistant message: content, thinking when there is some, tool calls with arguments as an object. */
function ollamaMessage(content: string, extra?: PieceExtra): Record<string, unknown> {
  const message: Record<string, unknown> = { role: 'assistant', content };
  if (extra?.thinking) message.thinking = extra.thinking;
  if (extra?.calls.length) {
    message.tool_calls = extra.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
  }
  return message;
}

/** POST /api/chat */
export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/chat', async (request, reply) => {
    const body = parseBody(chatRequest, request.body);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    const emptyReply = { message: { role: 'assistant', content: '' } };
    const idle = !body.messages?.length && keepAlive === 0 ? unloadedAlready(ctx, body.model, emptyReply) : null;
    if (idle) return idle;
    return withModel(ctx, body.model, reply, keepAlive, async (a) => {
      const messages = (body.messages ?? []).map((m) => {
        const out: ChatMessage = { role: m.role, content: m.content };
        if (m.thinking) out.thinking = m.thinking;
        if (m.tool_name) {
          out.tool_name = m.tool_name;
          // Jinja templates read the tool's name as OpenAI's `name`.
          out.name = m.tool_name;
        }
        if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
        // Jinja templates read OpenAI's shape (function.arguments as an object, as vLLM passes it).
        if (m.tool_calls?.length)
          out.tool_calls = m.tool_calls.map((c) => ({ type: 'function', function: c.function }));
        return out;
      });
      if (messages.length === 0) {
        const unload = keepAlive === 0;
        if (unload) await a.lease.unload();
        return loadOnly(a.entry.name, emptyReply, unload);
      }
      const tools = resolveTools(a.model, a.entry.name, body.tools, 'auto', undefined);
      const think = thinkOption(body.think, a);
      // A conversation ending in the assistant's words is a prefill Ollama continues, rather than a new turn (an empty
      // one is left out: nothing to go on from).
      const end = messages.at(-1)!;
      if (messages.length > 1 && end.role === 'assistant' && !end.content && !end.tool_calls) messages.pop();
      const last = messages.at(-1)!;
      const render = {
        tools: tools.templateTools,
        kwargs: think === undefined ? undefined : { enable_thinking: think },
        continueFinalMessage: last.role === 'assistant' && !last.tool_calls ? ('if-possible' as const) : undefined,
      };
      const { prompt, ids } = await encodeOllamaChat(a.model, a.entry.name, messages, render);
      // Thinking comes apart from the content when asked for, as Ollama does.
      const prefill = render.continueFinalMessage ? last.content : undefined;
      const reasoning = think ? reasoningMode(a.model.chatTemplate?.source ?? '', prompt, prefill) : null;
      const mode = reasoning || tools.format ? { reasoning, tools: tools.format } : undefined;
      return generateAndRespond(ctx, reply, a, ids, body, {
        piece: (text, extra) => ({ message: ollamaMessage(text, extra) }),
        mode,
      });
    });
  });
}
