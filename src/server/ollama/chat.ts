import type { FastifyInstance } from 'fastify';
import { encodeChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { clientGone } from '../streaming.ts';
import { parseBody } from '../validate.ts';
import { keepAliveMs, samplingFromOptions, withStoredParameters } from './options.ts';
import { loadOnly, respond } from './respond.ts';
import { chatRequest } from './schemas.ts';

/** POST /api/chat */
export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/chat', async (request, reply) => {
    const body = parseBody(chatRequest, request.body);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    return withModel(ctx, body.model, clientGone(request, reply), keepAlive, async (a) => {
      const messages = (body.messages ?? []).map((m) => ({ role: m.role, content: m.content }));
      if (messages.length === 0) {
        if (keepAlive === 0) a.lease.release(0);
        return loadOnly(a.entry.name, { message: { role: 'assistant', content: '' } }, keepAlive === 0);
      }
      const ids = encodeChat(a.model, a.entry.name, messages);
      const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
      const params = samplingFromOptions(
        withStoredParameters(body.options, a.model.parameters),
        ids.length,
        a.model.contextLength,
        logprobs,
      );
      const times = newTimes();
      const outputs = await primed(runEngine(ctx, a, ids, params, times));
      return respond(reply, outputs, {
        stream: body.stream !== false,
        a,
        times,
        wantLogprobs: logprobs !== null,
        piece: (text) => ({ message: { role: 'assistant', content: text } }),
      });
    });
  });
}
