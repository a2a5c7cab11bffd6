import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { prepareChat } from './chat-request.ts';
import { defaultModel } from './default-model.ts';
import { badRequest } from './errors.ts';
import { type Admitted, encodePrompt, type ServerContext, withModel } from './generation.ts';
import { keepAliveMs } from './ollama/options.ts';
import { toMessages } from './openai/chat-message.ts';
import { chatMessage, keepAlive, unsupported } from './openai/schemas.ts';
import { toolsSchema } from './tool-requests.ts';
import { parseBody } from './validate.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();

/** vLLM's /tokenize: a prompt, or messages through the chat template (its two request shapes in one). */
const tokenizeRequest = z
  .strictObject({
    // Optional, the one served model when absent (vLLM serves one).
    model: opt(z.string().min(1).max(1024)),
    prompt: opt(z.string()),
    messages: opt(z.array(z.any()).min(1).max(4096).pipe(z.array(chatMessage))),
    add_special_tokens: opt(z.boolean()),
    add_generation_prompt: opt(z.boolean()),
    continue_final_message: opt(z.boolean()),
    chat_template: unsupported('a chat template in the request', "the model's own is used"),
    tools: opt(toolsSchema),
    chat_template_kwargs: opt(z.record(z.string(), z.unknown())),
    return_token_strs: opt(z.boolean()),
    keep_alive: keepAlive,
  })
  .superRefine((b, ctx) => {
    if ((b.prompt == null) === (b.messages == null)) {
      ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'give either prompt or messages' });
    }
    if (b.continue_final_message && b.add_generation_prompt) {
      const message = 'continue_final_message and add_generation_prompt cannot both be true';
      ctx.addIssue({ code: 'custom', path: ['continue_final_message'], message });
    }
  });

const detokenizeRequest = z.strictObject({
  model: opt(z.string().min(1).max(1024)),
  tokens: z.array(z.number().int()).max(1 << 20),
  keep_alive: keepAlive,
});

/**
 * POST /tokenize and /detokenize (vLLM's): a prompt's ids as the completions endpoint takes them (the tokenizer's
 * special tokens unless `add_special_tokens` is false), or a conversation's as the chat endpoint renders it; and ids
 * back to text. Any model: generating, embedding or reranking.
 */
export function registerTokenize(app: FastifyInstance, ctx: ServerContext): void {
  /** The model a body names (or the one served), whatever it does (only its tokenizer and template are used). */
  const withAnyModel = async <T>(
    body: { model?: string | null; keep_alive?: string | number | null },
    reply: FastifyReply,
    fn: (a: Admitted) => Promise<T>,
  ) => {
    const model = body.model ?? (await defaultModel(ctx, 'any'));
    return withModel(ctx, model, reply, keepAliveMs(body.keep_alive), fn, { task: 'any', tokensOnly: true });
  };

  app.post('/tokenize', async (request, reply) => {
    const body = parseBody(tokenizeRequest, request.body);
    return withAnyModel(body, reply, async (a) => {
      const ids = body.messages
        ? (
            await prepareChat(a, {
              messages: toMessages(body.messages),
              tools: body.tools,
              kwargs: body.chat_template_kwargs ?? undefined,
              addGenerationPrompt: body.add_generation_prompt ?? undefined,
              continueFinalMessage: body.continue_final_message ? 'required' : undefined,
              encode: { addSpecialTokens: body.add_special_tokens ?? undefined, anyLength: true },
            })
          ).ids
        : await encodePrompt(a.model, body.prompt!, body.add_special_tokens ?? true, true);
      const tok = a.model.tokenizer;
      return {
        count: ids.length,
        max_model_len: a.model.contextLength,
        tokens: ids,
        token_strs: body.return_token_strs ? ids.map((id) => tok.tokenText?.(id) ?? tok.decode([id])) : null,
      };
    });
  });

  app.post('/detokenize', async (request, reply) => {
    const body = parseBody(detokenizeRequest, request.body);
    return withAnyModel(body, reply, async (a) => {
      const vocab = a.model.tokenizer.vocabSize;
      const bad = body.tokens.findIndex((t) => t < 0 || t >= vocab);
      if (bad >= 0) {
        throw badRequest(
          `tokens[${bad}]: id ${body.tokens[bad]} is outside the vocabulary (0..${vocab - 1})`,
          `tokens[${bad}]`,
        );
      }
      return { prompt: a.model.tokenizer.decode(body.tokens) };
    });
  });
}
