import type { FastifyInstance } from 'fastify';
import { encodeOllamaChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { type ServerContext, withModel } from '../generation.ts';
import { parseBody } from '../validate.ts';
import { keepAliveMs } from './options.ts';
import { generateAndRespond, loadOnly } from './respond.ts';
import { chatRequest } from './schemas.ts';

/** POST /api/chat */
export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/chat', async (request, reply) => {
    const body = parseBody(chatRequest, request.body);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    return withModel(ctx, body.model, reply, keepAlive, async (a) => {
      const messages = (body.messages ?? []).map((m) => ({ role: m.role, content: m.content }));
      if (messages.length === 0) {
        const unload = keepAlive === 0;
        if (unload) a.lease.release();
        return loadOnly(a.entry.name, { message: { role: 'assistant', content: '' } }, unload);
      }
      const ids = await encodeOllamaChat(a.model, a.entry.name, messages);
      return generateAndRespond(ctx, reply, a, ids, body, {
        piece: (text) => ({ message: { role: 'assistant', content: text } }),
      });
    });
  });
}
