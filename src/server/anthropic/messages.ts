import type { FastifyInstance } from 'fastify';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { prepareChat } from '../chat-request.ts';
import { ApiError, errorBody, streamFailure } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { blockId, drainAnswer, OutputBlocks } from '../output-blocks.ts';
import { EventStream } from '../streaming.ts';
import { parseBody } from '../validate.ts';
import { type MessageEvent, MessageOutput, stopOf, usageOf } from './messages-output.ts';
import { anthropicAsk, countTokensRequest, messagesRequest } from './messages-request.ts';

/** The Messages API has no stop reason for a generation the server cut (a forced shutdown): an error instead. */
const shutDown = () => new ApiError(503, 'the generation was aborted: the server is shutting down');

/**
 * POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the chat machinery (template, tools,
 * reasoning and tool-call parsing). `max_tokens` is sized for the provider's own context, so it is held to what the
 * model's context leaves after the prompt. Streams the API's named events.
 */
export function registerMessages(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/messages', async (request, reply) => {
    const body = parseBody(messagesRequest, request.body);
    const ask = anthropicAsk(body);
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const { ids, mode, output } = await prepareChat(a, ask);
      const room = a.model.contextLength - ids.length;
      const contextBound = room < body.max_tokens;
      const stops = body.stop_sequences ?? [];
      const params = samplingFrom('openai', {
        ...body,
        max_tokens: Math.max(1, Math.min(body.max_tokens, room)),
        stop: stops,
      });
      const outputs = await primed(runEngine(ctx, a, ids, params, newTimes(), { stop: 'stop_sequences' }, output));
      const message = {
        id: blockId('msg'),
        type: 'message',
        role: 'assistant',
        model: a.entry.name,
        content: [] as Record<string, unknown>[],
        stop_reason: null,
        stop_sequence: null,
        stop_details: null,
        container: null,
        diagnostics: null,
        usage: usageOf(ids.length, null),
      };
      if (!body.stream) {
        const out = new MessageOutput();
        const end = await drainAnswer(outputs, new OutputBlocks(mode, out));
        // An abort is the client's going away (nobody to answer) or a forced shutdown.
        if (end.reason === 'abort' && !reply.raw.destroyed) throw shutDown();
        return {
          ...message,
          content: out.content,
          ...stopOf(end, stops, contextBound),
          usage: usageOf(ids.length, end),
        };
      }
      const stream = new EventStream(reply, 'sse', true);
      const send = (e: MessageEvent) => stream.send(e);
      send({ type: 'message_start', message });
      const out = new MessageOutput(send);
      try {
        const end = await drainAnswer(outputs, new OutputBlocks(mode, out, true), () => stream.open);
        // A client gone has nobody to tell; an abort with the stream still open is a forced shutdown.
        if (end.reason === 'abort' && stream.open) throw shutDown();
        send({ type: 'message_delta', delta: stopOf(end, stops, contextBound), usage: usageOf(ids.length, end) });
        send({ type: 'message_stop' });
      } catch (err) {
        send(errorBody('anthropic', streamFailure(err, request.log)) as MessageEvent);
      }
      stream.end();
      return reply;
    });
  });

  app.post('/v1/messages/count_tokens', async (request, reply) => {
    const body = parseBody(countTokensRequest, request.body);
    const ask = anthropicAsk(body);
    return withModel(
      ctx,
      body.model,
      reply,
      keepAliveMs(body.keep_alive),
      async (a) => {
        // A count, not a prompt: a conversation longer than the context is counted too, as /tokenize counts it.
        const { ids } = await prepareChat(a, { ...ask, encode: { anyLength: true } });
        return { input_tokens: ids.length };
      },
      { tokensOnly: true },
    );
  });
}
