import type { FastifyInstance } from 'fastify';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { prepareChat } from '../chat-request.ts';
import { ApiError } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { type AnswerEnd, drainAnswer, OutputBlocks } from '../output-blocks.ts';
import { EventStream } from '../streaming.ts';
import { parseBody } from '../validate.ts';
import { anthropicId, type MessageEvent, MessageOutput, stopOf } from './messages-output.ts';
import { anthropicAsk, countTokensRequest, messagesRequest } from './messages-request.ts';

/** Anthropic's usage: tokens in and out (a prefix-cache hit counts as a cache read). */
function usage(inputTokens: number, end: AnswerEnd | null) {
  const cached = end?.cachedTokens ?? 0;
  return {
    input_tokens: inputTokens - cached,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: end?.outputTokens ?? 0,
  };
}

/** A generation cut by the server (a forced shutdown) is an error here: the API has no stop reason for it. */
function aborted(end: AnswerEnd): ApiError | null {
  return end.reason === 'abort' ? new ApiError(503, 'the generation was aborted (the server is shutting down)') : null;
}

/**
 * POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API (what Claude Code and the Anthropic SDKs
 * send) over the chat machinery: template, tools, reasoning and tool-call parsing. Streams the API's named events.
 */
export function registerMessages(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/messages', async (request, reply) => {
    const body = parseBody(messagesRequest, request.body);
    const ask = anthropicAsk(body);
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const { ids, mode, output } = await prepareChat(a, ask);
      const stops = body.stop_sequences ?? [];
      const params = samplingFrom('openai', { ...body, max_tokens: body.max_tokens, stop: stops });
      const outputs = await primed(runEngine(ctx, a, ids, params, newTimes(), { stop: 'stop_sequences' }, output));
      const message = {
        id: anthropicId('msg'),
        type: 'message',
        role: 'assistant',
        model: a.entry.name,
        content: [] as Record<string, unknown>[],
        stop_reason: null,
        stop_sequence: null,
        usage: usage(ids.length, null),
      };
      if (!body.stream) {
        const out = new MessageOutput();
        const end = await drainAnswer(outputs, new OutputBlocks(mode, out));
        const error = aborted(end);
        if (error) throw error;
        return { ...message, content: out.content, ...stopOf(end, stops), usage: usage(ids.length, end) };
      }
      const stream = new EventStream(reply, 'sse', true);
      const send = (e: MessageEvent) => stream.send(e);
      send({ type: 'message_start', message });
      const out = new MessageOutput(send);
      try {
        const end = await drainAnswer(outputs, new OutputBlocks(mode, out), () => stream.open);
        const error = aborted(end);
        if (error) throw error;
        send({ type: 'message_delta', delta: stopOf(end, stops), usage: usage(ids.length, end) });
        send({ type: 'message_stop' });
      } catch (err) {
        const text = err instanceof Error ? err.message : String(err);
        send({ type: 'error', error: { type: 'api_error', message: text } });
      }
      stream.end();
      return reply;
    });
  });

  app.post('/v1/messages/count_tokens', async (request, reply) => {
    const body = parseBody(countTokensRequest, request.body);
    const ask = anthropicAsk(body);
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const { ids } = await prepareChat(a, ask);
      return { input_tokens: ids.length };
    });
  });
}
