import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { badRequest } from './errors.ts';
import type { ServerContext } from './generation.ts';
import { completionId, unixSeconds } from './openai/common.ts';
import { keepAlive, truncatePromptTokens } from './openai/schemas.ts';
import { MAX_INPUTS, withPoolingModel } from './pooling.ts';
import { relevanceScores } from './rerank.ts';
import { parseBody } from './validate.ts';

const texts = z.union([z.string(), z.array(z.string()).min(1).max(MAX_INPUTS)], {
  error: 'expected a string or a list of strings',
});

/** vLLM's score request: `text_1` against each of `text_2` (1:N), or pair by pair (N:N). */
const scoreRequest = z.strictObject({
  // Optional, the one served model when absent (vLLM serves one).
  model: z.string().min(1).max(1024).nullish(),
  text_1: texts,
  text_2: texts,
  keep_alive: keepAlive,
  // vLLM's scheduling hint; pagoda's pooling engine runs requests first come, first served.
  priority: z.number().int().nullish(),
  truncate_prompt_tokens: truncatePromptTokens,
  activation: z
    .boolean()
    .nullish()
    .refine((v) => v !== false, "false (raw logits) is not supported: a reranker's score is its sigmoid"),
});

/** POST /score and /v1/score (vLLM's): a reranker's score, or an embedding model's cosine, of each pair. */
export function registerScore(app: FastifyInstance, ctx: ServerContext): void {
  for (const url of ['/score', '/v1/score']) {
    app.post(url, async (request, reply) => {
      const body = parseBody(scoreRequest, request.body, 'text_1 and text_2, each a string or a list of strings');
      const queries = typeof body.text_1 === 'string' ? [body.text_1] : body.text_1;
      const docs = typeof body.text_2 === 'string' ? [body.text_2] : body.text_2;
      if (queries.length > 1 && queries.length !== docs.length) {
        throw badRequest(
          `text_1 has ${queries.length} texts and text_2 ${docs.length}: give one text_1, or as many as text_2`,
          'text_1',
        );
      }
      for (const [field, list] of [
        ['text_1', queries],
        ['text_2', docs],
      ] as const) {
        const empty = list.indexOf('');
        if (empty >= 0) throw badRequest(`${field}[${empty}]: must not be empty`, `${field}[${empty}]`);
      }
      return withPoolingModel(ctx, body, reply, async (a) => {
        const fields = { queries: 'text_1', documents: 'text_2' };
        const r = await relevanceScores(ctx, a, queries, docs, fields, body.truncate_prompt_tokens);
        return {
          id: completionId('score'),
          object: 'list',
          created: unixSeconds(),
          model: a.entry.name,
          data: r.scores.map((score, index) => ({ index, object: 'score', score })),
          usage: { prompt_tokens: r.tokens, total_tokens: r.tokens, completion_tokens: 0 },
        };
      });
    });
  }
}
