import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PoolingInput } from '../runner/pooling-batch.ts';
import { ApiError, badRequest } from './errors.ts';
import { type Admitted, encodePrompt, type ServerContext } from './generation.ts';
import { ignoredOpenAiFields } from './ignored-fields.ts';
import { completionId } from './openai/common.ts';
import { keepAlive, truncatePromptTokens } from './openai/schemas.ts';
import { cosine, encodeText, MAX_INPUTS, poolingOf, runPooling, truncationRule, withPoolingModel } from './pooling.ts';
import { parseBody } from './validate.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();

/** The request vLLM, Jina and Cohere share: a query, documents (strings, or Jina's `{text}`), top_n. */
const rerankRequest = z.strictObject({
  // vLLM's: optional, the one served model when absent.
  model: opt(z.string().min(1).max(1024)),
  query: z.string().min(1),
  documents: z
    .array(
      z.union([z.string(), z.strictObject({ text: z.string() })], { error: 'expected a string or an object {text}' }),
    )
    .min(1)
    .max(MAX_INPUTS),
  top_n: opt(z.number().int().min(0)),
  return_documents: opt(z.boolean()),
  truncate_prompt_tokens: truncatePromptTokens,
  ...ignoredOpenAiFields(),
  keep_alive: keepAlive,
});

/** The request's names for its two sides, in errors: /v1/rerank's `query`, `documents`; /score's `text_1`, `text_2`. */
export interface PairFields {
  queries: string;
  documents: string;
}

/**
 * Each document's relevance to its query (`queries` holds one query for all documents, or one per document): a
 * cross-encoder's score of the pair, or an embedding model's cosine. `truncate` is vLLM's truncate_prompt_tokens:
 * each text an embedding model reads, or each pair a cross-encoder reads, is cut to it (see `truncatedPair`).
 */
export async function relevanceScores(
  ctx: ServerContext,
  a: Admitted,
  queries: readonly string[],
  docs: readonly string[],
  fields: PairFields,
  truncate: number | null | undefined,
) {
  const side = poolingOf(a);
  const queryOf = (i: number) => (queries.length === 1 ? 0 : i);
  if (side.engine.task === 'embed') {
    // Errors name `param[i]`, or `param` alone for the one query of a rerank (index -1).
    const encodeAll = (texts: readonly string[], param: string, index: (i: number) => number) =>
      Promise.all(
        texts.map(async (t, i) => ({
          tokenIds: await encodeText(a, t, index(i), truncationRule(a, truncate, param)),
        })),
      );
    const seqs = [
      ...(await encodeAll(queries, fields.queries, (i) => (queries.length === 1 ? -1 : i))),
      ...(await encodeAll(docs, fields.documents, (i) => i)),
    ];
    const { rows, tokens } = await runPooling(ctx, a, seqs);
    const [q, d] = [rows.slice(0, queries.length), rows.slice(queries.length)];
    return { scores: d.map((r, i) => cosine(q[queryOf(i)]!, r)), tokens };
  }
  const rule = truncationRule(a, truncate, fields.documents);
  const seqs = await Promise.all(
    docs.map(async (d, i): Promise<PoolingInput> => {
      const what = `${fields.documents}[${i}]`;
      let pair = await pairInput(a, queries[queryOf(i)]!, d);
      if (pair.ids.length > rule.limit && rule.truncate) {
        pair = await truncatedPair(a, queries[queryOf(i)]!, d, rule.limit, what);
      } else if (pair.ids.length > rule.limit) {
        throw new ApiError(
          400,
          `${what}: the query and document are ${pair.ids.length} tokens, more than this model's maximum of ${rule.limit}`,
          what,
          'context_length_exceeded',
        );
      }
      return { tokenIds: pair.ids, tokenTypeIds: side.pairTypes ? pair.typeIds : undefined };
    }),
  );
  const { rows, tokens } = await runPooling(ctx, a, seqs);
  return { scores: rows.map((r) => r[0]!), tokens };
}

/**
 * A pair cut to `limit` tokens at the document's end, the query kept whole (transformers' truncation='only_second'; a
 * simpler rule than its default longest_first, which may cut the query too): the document's own tokens are cut, then
 * decoded and the pair built again, so a template reranker's text after the document stays whole; repeated until it
 * fits, since the text around the cut may tokenize differently. A query that leaves the document no token is a 400.
 */
async function truncatedPair(a: Admitted, query: string, doc: string, limit: number, what: string) {
  let docIds = await encodePrompt(a.model, doc, false);
  let pair = await pairInput(a, query, doc);
  while (pair.ids.length > limit) {
    const keep = docIds.length - (pair.ids.length - limit);
    if (keep < 1) {
      throw badRequest(
        `${what}: truncate_prompt_tokens ${limit} leaves no room for the document after the query`,
        'truncate_prompt_tokens',
      );
    }
    docIds = docIds.slice(0, keep);
    pair = await pairInput(a, query, a.model.tokenizer.decode(docIds));
  }
  return pair;
}

/**
 * A reranker's input for one pair: a decoder reranker's template with the texts filled in, tokenized with its special
 * tokens read as such and none added (as llama.cpp's server does; here in one pass, so a query's own "{document}"
 * stays text); else the tokenizer's pair template (`[CLS] query [SEP] document [SEP]`) with its token types.
 */
async function pairInput(a: Admitted, query: string, doc: string): Promise<{ ids: number[]; typeIds?: number[] }> {
  const side = poolingOf(a);
  if (side.rerankTemplate !== null) {
    const text = side.rerankTemplate.replace(/\{(query|document)\}/g, (_, name) => (name === 'query' ? query : doc));
    return { ids: await encodePrompt(a.model, text, false) };
  }
  const tok = a.model.tokenizer;
  if (!tok.encodePair) throw new ApiError(500, `model "${a.entry.name}": its tokenizer has no pair template`);
  const lower = (t: string) => (side.doLowerCase ? t.toLowerCase() : t);
  return tok.encodePair(lower(query), lower(doc));
}

/** POST /v1/rerank, /rerank and /v2/rerank (Cohere v2 clients' path), one request shape, as vLLM serves them. */
export function registerRerank(app: FastifyInstance, ctx: ServerContext): void {
  for (const url of ['/v1/rerank', '/rerank', '/v2/rerank']) {
    app.post(url, async (request, reply) => {
      const body = parseBody(rerankRequest, request.body);
      const docs = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
      const empty = docs.indexOf('');
      if (empty >= 0) throw badRequest(`documents[${empty}]: must not be empty`, `documents[${empty}]`);
      return withPoolingModel(ctx, body, reply, async (a) => {
        const fields = { queries: 'query', documents: 'documents' };
        const r = await relevanceScores(ctx, a, [body.query], docs, fields, body.truncate_prompt_tokens);
        const ranked = r.scores
          .map((relevance_score, index) => ({ index, relevance_score }))
          .sort((x, y) => y.relevance_score - x.relevance_score || x.index - y.index)
          .slice(0, body.top_n || docs.length);
        return {
          id: completionId('rerank'),
          model: a.entry.name,
          usage: { prompt_tokens: r.tokens, total_tokens: r.tokens },
          results: ranked.map((x) =>
            body.return_documents === false ? x : { ...x, document: { text: docs[x.index]! } },
          ),
        };
      });
    });
  }
}
