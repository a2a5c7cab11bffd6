import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { asJson, openAiEmbeddingsJson } from '../embedding-json.ts';
import { badRequest } from '../errors.ts';
import type { Admitted, ServerContext } from '../generation.ts';
import { ignoredOpenAiFields } from '../ignored-fields.ts';
import {
  checkIds,
  embeddingSide,
  encodeText,
  MAX_INPUTS,
  normalized,
  poolingOf,
  runPooling,
  truncationRule,
  withPoolingModel,
} from '../pooling.ts';
import { parseBody } from '../validate.ts';
import { keepAlive, truncatePromptTokens, unsupported } from './schemas.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();
/** `x` when it is a list of integer token ids >= 0, else null (a loop: zod costs more than the rest of the route). */
function tokenIds(x: unknown): number[] | null {
  if (!Array.isArray(x)) return null;
  for (const t of x) if (!Number.isSafeInteger(t) || t < 0) return null;
  return x;
}

export const embeddingRequest = z.strictObject({
  model: z.string().min(1).max(1024),
  // A string, strings, token ids or lists of token ids; checked by `inputsOf` so each refusal names the item.
  input: z.unknown().optional(),
  encoding_format: opt(z.enum(['float', 'base64'])),
  dimensions: opt(z.number().int().min(1)),
  ...ignoredOpenAiFields(),
  keep_alive: keepAlive,
  // vLLM's extras: one of the model's instruction prompts (config_sentence_transformers.json); inputs cut to a length;
  // the tokenizer's special tokens left out.
  prompt_name: opt(z.string().min(1).max(256)),
  truncate_prompt_tokens: truncatePromptTokens,
  add_special_tokens: opt(z.boolean()),
  messages: unsupported('a chat-style embedding request', 'send the texts as input'),
});

type Input = { text: string } | { ids: number[] };

/** OpenAI's input forms as a list of texts or token-id lists; a 400 naming the item otherwise. */
function inputsOf(input: unknown): Input[] {
  if (typeof input === 'string') {
    if (input === '') throw badRequest('input: must not be an empty string', 'input');
    return [{ text: input }];
  }
  if (!Array.isArray(input)) {
    throw badRequest('input: expected a string, a list of strings, or token ids (a list, or a list of lists)', 'input');
  }
  if (input.length === 0) throw badRequest('input: must not be an empty list', 'input');
  if (input.length > MAX_INPUTS) {
    throw badRequest(`input: at most ${MAX_INPUTS} inputs per request (got ${input.length})`, 'input');
  }
  if (typeof input[0] === 'number') {
    const ids = tokenIds(input);
    if (!ids) throw badRequest('input: a list of token ids must hold only integers >= 0', 'input');
    return [{ ids }];
  }
  const kind = typeof input[0] === 'string' ? 'string' : 'list of token ids';
  return input.map((item, i): Input => {
    if (kind === 'string' && typeof item === 'string') {
      if (item === '') throw badRequest(`input[${i}]: must not be an empty string`, `input[${i}]`);
      return { text: item };
    }
    const ids = kind === 'string' ? null : tokenIds(item);
    if (!ids) throw badRequest(`input[${i}]: expected ${itemKind(kind, i)}`, `input[${i}]`);
    return { ids };
  });
}

/** What item `i` of a list input must be: the first says what the rest are (all strings, or all token-id lists). */
function itemKind(kind: 'string' | 'list of token ids', i: number): string {
  if (i === 0) return 'a string or a list of integer token ids >= 0';
  return kind === 'string'
    ? 'a string, since input[0] is a string'
    : 'a list of integer token ids >= 0, since input[0] is a list of token ids';
}

/** The embedding size a request asks for: the model's, or `dimensions` where the model allows truncation. */
function outputSize(a: Admitted, dimensions: number | null | undefined): number {
  const side = poolingOf(a);
  const full = side.engine.outputSize;
  if (dimensions === null || dimensions === undefined) return full;
  const allowed = side.matryoshka;
  if (allowed === false || (Array.isArray(allowed) && !allowed.includes(dimensions)) || dimensions > full) {
    const which = Array.isArray(allowed) ? `one of ${allowed.join(', ')}` : allowed ? `at most ${full}` : null;
    throw badRequest(
      which
        ? `dimensions: ${dimensions} is not available for this model (expected ${which})`
        : `dimensions: model "${a.entry.name}" does not support matryoshka representation (no is_matryoshka in config.json), so its embeddings cannot be shortened`,
      'dimensions',
    );
  }
  return dimensions;
}

/** POST /v1/embeddings */
export function registerEmbeddings(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/embeddings', async (request, reply) => {
    const body = parseBody(embeddingRequest, request.body);
    const inputs = inputsOf(body.input);
    return withPoolingModel(ctx, body, reply, async (a) => {
      const side = embeddingSide(a);
      const size = outputSize(a, body.dimensions);
      if (body.prompt_name && inputs.some((x) => 'ids' in x)) {
        throw badRequest('prompt_name applies to text inputs, not token ids', 'prompt_name');
      }
      // OpenAI refuses an input longer than the model takes, naming it, unless the request asks for vLLM's truncation.
      const rule = truncationRule(a, body.truncate_prompt_tokens, 'input');
      const text = { promptName: body.prompt_name, addSpecialTokens: body.add_special_tokens };
      const seqs = await Promise.all(
        inputs.map(async (x, i) => ({
          tokenIds: 'ids' in x ? checkIds(a, x.ids, i, rule) : await encodeText(a, x.text, i, rule, text),
        })),
      );
      const { rows, tokens } = await runPooling(ctx, a, seqs);
      const shaped = rows.map((r) =>
        size === r.length ? r : side.engine.normalized ? normalized(r.subarray(0, size)) : r.slice(0, size),
      );
      return asJson(reply, openAiEmbeddingsJson(shaped, body.encoding_format ?? 'float', a.entry.name, tokens));
    });
  });
}
