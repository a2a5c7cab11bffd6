import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { asJson, floatsJson, ollamaEmbedJson } from '../embedding-json.ts';
import { badRequest } from '../errors.ts';
import type { Admitted, ServerContext } from '../generation.ts';
import { keepAlive } from '../openai/schemas.ts';
import { embeddingSide, encodeText, type LengthRule, normalized, runPooling, withPoolingModel } from '../pooling.ts';
import { parseBody } from '../validate.ts';
import { type Options, options } from './schemas.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();
const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

const embedRequest = z.strictObject({
  model: z.string().min(1).max(1024),
  // A string or a list of strings; checked by `textsOf` so a refusal names the item.
  input: z.unknown().optional(),
  truncate: opt(z.boolean()),
  dimensions: opt(z.number().int().min(1)),
  keep_alive: keepAlive,
  options: opt(options),
});

const embeddingsRequest = z.strictObject({
  model: z.string().min(1).max(1024),
  prompt: opt(z.string()),
  keep_alive: keepAlive,
  options: opt(options),
});

/** Ollama's input: a string or a list of strings; an empty string or list embeds nothing (and loads the model). */
function textsOf(input: unknown): string[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return input === '' ? [] : [input];
  if (!Array.isArray(input))
    throw badRequest('input: invalid input type (expected a string or a list of strings)', 'input');
  return input.map((item, i) => {
    if (typeof item !== 'string')
      throw badRequest(`input[${i}]: invalid input type (expected a string)`, `input[${i}]`);
    return item;
  });
}

/** Tokens an input may hold: options.num_ctx when smaller than what the model takes. */
function limitOf(a: Admitted, opts: Options | null | undefined): number {
  return Math.min(opts?.num_ctx ?? Number.POSITIVE_INFINITY, a.model.contextLength);
}

/** The model's embeddings of `texts`; a reranker has none. */
async function embedTexts(ctx: ServerContext, a: Admitted, texts: string[], rule: LengthRule) {
  embeddingSide(a);
  const seqs = await Promise.all(texts.map(async (t, i) => ({ tokenIds: await encodeText(a, t, i, rule) })));
  return runPooling(ctx, a, seqs);
}

/** POST /api/embed and the older POST /api/embeddings */
export function registerEmbed(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/embed', async (request, reply) => {
    const body = parseBody(embedRequest, request.body);
    const texts = textsOf(body.input);
    return withPoolingModel(ctx, body, reply, async (a) => {
      if (texts.length === 0) return { model: a.entry.name, embeddings: [] };
      // Ollama truncates by default; with truncate: false an input that does not fit is refused.
      const rule = { limit: limitOf(a, body.options), truncate: body.truncate !== false, param: 'input' };
      const { rows, tokens } = await embedTexts(ctx, a, texts, rule);
      const dims = body.dimensions;
      // Ollama normalizes every embedding, and again after cutting it to `dimensions`.
      const embeddings = rows.map((r) => {
        const unit = normalized(r);
        return dims && dims < unit.length ? normalized(unit.subarray(0, dims)) : unit;
      });
      const totalNs = ns(performance.now() - a.arrival);
      return asJson(reply, ollamaEmbedJson(a.entry.name, embeddings, totalNs, ns(a.lease.loadMs), tokens));
    });
  });

  app.post('/api/embeddings', async (request, reply) => {
    const body = parseBody(embeddingsRequest, request.body);
    return withPoolingModel(ctx, body, reply, async (a) => {
      if (!body.prompt) return { embedding: [] };
      const rule = { limit: limitOf(a, body.options), truncate: true, param: 'prompt' };
      // The older route returns the model's own output, without Ollama's extra normalization.
      const { rows } = await embedTexts(ctx, a, [body.prompt], rule);
      return asJson(reply, `{"embedding":${floatsJson(rows[0]!)}}`);
    });
  });
}
