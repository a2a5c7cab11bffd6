import type { FastifyInstance } from 'fastify';
import { type ChatOutputMode, reasoningMode } from '../chat-output.ts';
import { encodeChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { infillIds } from '../fill-in-middle.ts';
import { type Admitted, encodePrompt, type ServerContext, withModel } from '../generation.ts';
import type { ChatMessage } from '../models.ts';
import { parseBody } from '../validate.ts';
import { keepAliveMs, thinkOption } from './options.ts';
import { generateAndRespond, loadOnly, unloadedAlready } from './respond.ts';
import { type GenerateRequest, generateRequest } from './schemas.ts';

/**
 * The prompt's token ids: `context` (an earlier answer's) first, then the prompt, templated unless raw, or with a
 * `suffix` the fill-in-the-middle prompt around the gap between them; and the reasoning mode when thinking is asked
 * for. The engine checks the ids against the model's vocabulary.
 */
async function promptIds(a: Admitted, body: GenerateRequest): Promise<{ ids: number[]; mode?: ChatOutputMode }> {
  const { model } = a;
  const context = body.context ?? [];
  const prompt = body.prompt ?? '';
  // Refused on a model that cannot think whatever the prompt's form, as Ollama refuses it.
  const think = thinkOption(body.think, a);
  let ids: number[];
  let mode: ChatOutputMode | undefined;
  if (body.suffix) {
    if (body.raw) throw badRequest('suffix cannot be combined with raw: true', 'suffix');
    if (body.system) throw badRequest('system cannot be combined with suffix (a fill-in-the-middle prompt)', 'system');
    ids = await infillIds(model, a.entry.name, prompt, body.suffix);
  } else if (body.raw || !model.chatTemplate) {
    if (body.raw && body.system) throw badRequest('system cannot be combined with raw: true', 'system');
    const text = body.system ? `${body.system}\n\n${prompt}` : prompt;
    ids = await encodePrompt(model, text, context.length === 0);
  } else {
    const messages: ChatMessage[] = [];
    if (body.system) messages.push({ role: 'system', content: body.system });
    messages.push({ role: 'user', content: prompt });
    const kwargs = think === undefined ? undefined : { enable_thinking: think };
    // Ollama puts the Modelfile's MESSAGEs in the first turn only: a `context` already holds them.
    const chat = await encodeChat(model, a.entry.name, messages, { kwargs, omitStoredMessages: context.length > 0 });
    ids = chat.ids;
    const reasoning = think ? reasoningMode(model.chatTemplate.source, chat.prompt) : null;
    if (reasoning) mode = { reasoning, tools: null };
  }
  return { ids: [...context, ...ids], mode };
}

/** POST /api/generate */
export function registerGenerate(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/generate', async (request, reply) => {
    const body = parseBody(generateRequest, request.body);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    const loadOnlyRequest = !body.prompt && !body.suffix && !body.context?.length;
    const idle = loadOnlyRequest && keepAlive === 0 ? unloadedAlready(ctx, body.model, { response: '' }) : null;
    if (idle) return idle;
    return withModel(ctx, body.model, reply, keepAlive, async (a) => {
      if (loadOnlyRequest) {
        const unload = keepAlive === 0;
        if (unload) await a.lease.unload();
        return loadOnly(a.entry.name, { response: '' }, unload);
      }
      const { ids, mode } = await promptIds(a, body);
      return generateAndRespond(ctx, reply, a, ids, body, {
        piece: (text, extra) => ({ response: text, ...(extra?.thinking ? { thinking: extra.thinking } : {}) }),
        final: (generated) => ({ context: [...ids, ...generated] }),
        mode,
      });
    });
  });
}
