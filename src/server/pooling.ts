import type { FastifyReply } from 'fastify';
import type { PoolingTimes } from '../engine/pooling-engine.ts';
import type { PoolingInput } from '../runner/pooling-batch.ts';
import { UserError } from '../util/errors.ts';
import { defaultModel } from './default-model.ts';
import { ApiError, badRequest } from './errors.ts';
import { type Admitted, encodePrompt, type ServerContext, withModel } from './generation.ts';
import type { PoolingSide } from './models.ts';
import { keepAliveMs } from './ollama/options.ts';
import { truncationLimit } from './openai/common.ts';

/** Most inputs one embeddings or rerank request may carry (OpenAI's limit for embeddings). */
export const MAX_INPUTS = 2048;

/** The model's pooling side: withModel(..., 'pooling') has checked it is there. */
export function poolingOf(a: Admitted): PoolingSide {
  return a.model.pooling!;
}

/**
 * Runs an embeddings or rerank route's work with the embedding or reranking model its body names, or the one served
 * when it names none (vLLM's rerank and score routes).
 */
export async function withPoolingModel<T>(
  ctx: ServerContext,
  body: { model?: string | null; keep_alive?: string | number | null },
  reply: FastifyReply,
  fn: (a: Admitted) => Promise<T>,
): Promise<T> {
  const model = body.model ?? (await defaultModel(ctx, 'pooling'));
  return withModel(ctx, model, reply, keepAliveMs(body.keep_alive), fn, { task: 'pooling' });
}

/** The pooling side of a model that embeds; a reranker has no embeddings (a 400). */
export function embeddingSide(a: Admitted): PoolingSide {
  const side = poolingOf(a);
  if (side.engine.task !== 'embed') {
    throw badRequest(`model "${a.entry.name}" is a reranking model: it has no embeddings (use /v1/rerank)`, 'model');
  }
  return side;
}

/** How over-long texts are handled: cut to `limit` tokens (Ollama's truncate), or refused naming `param[i]` (an index
 * below 0 names `param` alone). */
export interface LengthRule {
  limit: number;
  truncate: boolean;
  param: string;
}

/**
 * vLLM's truncate_prompt_tokens as the length rule of `param`'s inputs: absent, inputs past the model's maximum are
 * refused; -1 cuts them to it; k cuts them to k (k past the maximum is a 400, as for completions).
 */
export function truncationRule(a: Admitted, k: number | null | undefined, param: string): LengthRule {
  const limit = truncationLimit(k, a.model.contextLength);
  return { limit: limit ?? a.model.contextLength, truncate: limit !== null, param };
}

/**
 * A text as the model's sentence-transformers pipeline tokenizes it: the named prompt in front (only when a request
 * names one), lower-cased when the model says so, with the tokenizer's special tokens unless `addSpecialTokens` is
 * false.
 */
export async function encodeText(
  a: Admitted,
  text: string,
  index: number,
  rule: LengthRule,
  opts: { promptName?: string | null; addSpecialTokens?: boolean | null } = {},
): Promise<number[]> {
  const side = poolingOf(a);
  let full = opts.promptName ? promptText(side, opts.promptName) + text : text;
  if (side.doLowerCase) full = full.toLowerCase();
  return fitLength(a, full, await encodePrompt(a.model, full, opts.addSpecialTokens ?? true), index, rule);
}

function promptText(side: PoolingSide, name: string): string {
  if (!side.includePrompt) {
    throw badRequest(
      'prompt_name: this model pools without its prompt tokens (include_prompt: false), which pagoda does not support',
      'prompt_name',
    );
  }
  const text = side.prompts[name];
  if (text !== undefined) return text;
  const known = Object.keys(side.prompts);
  throw badRequest(
    `prompt_name: "${name.slice(0, 100)}" is not one of this model's prompts (${known.length ? known.join(', ') : 'it has none'})`,
    'prompt_name',
  );
}

/**
 * `ids` (the encoding of `text`) within `rule.limit` tokens: truncated as Hugging Face tokenizers truncate (the text's
 * own tokens are cut, the special tokens around them kept), or a 400 naming the input and its length.
 */
async function fitLength(a: Admitted, text: string, ids: number[], index: number, rule: LengthRule) {
  if (ids.length <= rule.limit) return ids;
  if (!rule.truncate) {
    const what = index < 0 ? rule.param : `${rule.param}[${index}]`;
    throw new ApiError(
      400,
      `${what} is ${ids.length} tokens, more than this model's maximum of ${rule.limit}`,
      what,
      'context_length_exceeded',
    );
  }
  const plain = await encodePrompt(a.model, text, false);
  const extra = ids.length - plain.length;
  let start = -1;
  for (let p = 0; p <= extra && start < 0; p++) if (plain.every((t, i) => ids[p + i] === t)) start = p;
  if (start < 0 || rule.limit <= extra) return ids.slice(0, rule.limit);
  return [...ids.slice(0, start), ...plain.slice(0, rule.limit - extra), ...ids.slice(start + plain.length)];
}

/**
 * Token-id inputs checked against the vocabulary and the length rule (`param[i]` named in every refusal); truncation
 * keeps the last ids, as vLLM's truncate_prompt_tokens does.
 */
export function checkIds(a: Admitted, ids: number[], index: number, rule: LengthRule): number[] {
  const vocab = a.model.tokenizer.vocabSize;
  const bad = ids.find((t) => t >= vocab);
  if (bad !== undefined) {
    throw badRequest(
      `${rule.param}[${index}]: token id ${bad} is outside this model's vocabulary (0..${vocab - 1})`,
      `${rule.param}[${index}]`,
    );
  }
  if (ids.length === 0) throw badRequest(`${rule.param}[${index}] is empty`, `${rule.param}[${index}]`);
  if (ids.length > rule.limit && rule.truncate) return ids.slice(ids.length - rule.limit);
  if (ids.length > rule.limit) {
    throw new ApiError(
      400,
      `${rule.param}[${index}] is ${ids.length} tokens, more than this model's maximum of ${rule.limit}`,
      `${rule.param}[${index}]`,
      'context_length_exceeded',
    );
  }
  return ids;
}

/**
 * Runs the inputs on the model's pooling engine (batched with every other request's), counting their tokens for
 * metrics, the log line and the response's usage, and each input pooled as a finished request; one row per input.
 */
export async function runPooling(
  ctx: ServerContext,
  a: Admitted,
  inputs: PoolingInput[],
): Promise<{ rows: Float32Array[]; tokens: number }> {
  const tokens = inputs.reduce((n, s) => n + s.tokenIds.length, 0);
  a.record.promptTokens = tokens;
  ctx.metrics.promptTokens.inc({ model_name: a.entry.name }, tokens);
  try {
    const times: PoolingTimes[] = [];
    const rows = await poolingOf(a).engine.pool(inputs, a.signal, times);
    const seconds = (performance.now() - a.arrival) / 1000;
    ctx.metrics.pooled(
      a.entry.name,
      inputs.map((s, i) => {
        const t = times[i];
        return {
          tokens: s.tokenIds.length,
          queueSeconds: t ? (t.scheduled - a.arrival) / 1000 : null,
          computeSeconds: t ? (t.done - t.scheduled) / 1000 : null,
        };
      }),
      seconds,
    );
    return { rows, tokens };
  } catch (err) {
    if (err instanceof UserError) throw badRequest(err.message);
    // The client went away (or a forced shutdown): its inputs not yet run were dropped. An abort, as a generation's,
    // not the server's failure: a 503 that a client still there (shutdown) reads, never an error in the log.
    if (a.signal.aborted) {
      throw new ApiError(
        503,
        `the request was aborted: ${(a.signal.reason as Error | undefined)?.message ?? 'aborted'}`,
      );
    }
    throw err;
  }
}

/** v / ||v|| (at least 1e-12), as Ollama and torch's F.normalize do; NaN or infinite values are a 500. */
export function normalized(v: Float32Array): Float32Array {
  let ss = 0;
  for (const x of v) {
    if (!Number.isFinite(x)) throw new ApiError(500, 'embedding contains NaN or Inf values');
    ss += x * x;
  }
  const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
  return v.map((x) => x * inv);
}

/** Cosine similarity of two embeddings. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.max(Math.sqrt(na * nb), 1e-12);
}
