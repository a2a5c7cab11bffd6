import type { FastifyInstance } from 'fastify';
import type { CompletionDelta } from '../../engine/types.ts';
import { encodeChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import type { ChatMessage } from '../models.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { openaiGrammar } from '../structured-output.ts';
import { parseBody } from '../validate.ts';
import { chatLogprobs, collectChoices, completionId, streamChunks, totalTokens, unixSeconds, usage } from './common.ts';
import { samplingParams } from './sampling.ts';
import { type ChatRequest, chatRequest } from './schemas.ts';

function toMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join(''),
    ...(m.name ? { name: m.name } : {}),
  }));
}

/** POST /v1/chat/completions */
export function registerChatCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(chatRequest, request.body);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    if (body.stream_options && !body.stream)
      throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const promptIds = await encodeChat(a.model, a.entry.name, toMessages(body.messages));
      // max_completion_tokens is chat's newer name for max_tokens.
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      // The engine names max_tokens (and logprobs) as vLLM does; say what this request sent.
      const fieldNames = {
        ...(body.max_completion_tokens ? { max_tokens: 'max_completion_tokens' } : {}),
        logprobs: 'top_logprobs',
      };
      const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
      const params = samplingParams({ ...body, max_tokens: maxTokens }, logprobs);
      const n = params.n ?? 1;
      const grammar = openaiGrammar(body);
      const outputs = await primed(runEngine(ctx, a, promptIds, params, newTimes(), fieldNames, { grammar }));
      const base = {
        id: completionId('chatcmpl'),
        object: 'chat.completion.chunk',
        created: unixSeconds(),
        model: a.entry.name,
      };

      if (body.stream) {
        const chunk = (d: CompletionDelta) => {
          const out: Record<string, unknown>[] = [];
          const lp = d.logprobs?.length ? { content: chatLogprobs(d.logprobs) } : null;
          if (d.text || lp) out.push({ index: d.index, delta: { content: d.text }, logprobs: lp, finish_reason: null });
          if (d.finishReason)
            out.push({
              index: d.index,
              delta: {},
              logprobs: null,
              finish_reason: d.finishReason,
              stop_reason: d.stopReason,
            });
          return out;
        };
        const opening = Array.from({ length: n }, (_, index) => ({
          index,
          delta: { role: 'assistant', content: '' },
          logprobs: null,
          finish_reason: null,
        }));
        await streamChunks(reply, outputs, {
          base,
          streamOptions: body.stream_options,
          promptTokens: promptIds.length,
          opening,
          chunk,
        });
        return reply;
      }

      const choices = await collectChoices(outputs, n);
      return {
        ...base,
        object: 'chat.completion',
        choices: choices.map((c) => ({
          index: c.index,
          message: { role: 'assistant', content: c.text },
          logprobs: logprobs === null ? null : { content: chatLogprobs(c.logprobs) },
          finish_reason: c.finishReason,
          stop_reason: c.stopReason,
        })),
        usage: usage(promptIds.length, totalTokens(choices)),
      };
    });
  });
}
