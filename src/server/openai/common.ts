import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { CompletionDelta, FinishReason, RequestOutput, TokenLogprob } from '../../engine/types.ts';
import { badRequest } from '../errors.ts';
import { EventStream } from '../streaming.ts';

export function completionId(prefix: string): string {
  return `${prefix}-${randomUUID().replaceAll('-', '')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function usage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** One choice gathered from the stream of deltas. */
export interface Choice {
  index: number;
  text: string;
  tokens: number;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  finishReason: FinishReason | null;
  stopReason: string | number | null;
}

/** Drains the engine's outputs into whole choices (non-streaming responses). */
export async function collectChoices(outputs: AsyncIterable<RequestOutput>, n: number): Promise<Choice[]> {
  const choices: Choice[] = Array.from({ length: n }, (_, index) => ({
    index,
    text: '',
    tokens: 0,
    tokenIds: [],
    logprobs: [],
    finishReason: null,
    stopReason: null,
  }));
  for await (const out of outputs) {
    for (const d of out.outputs) {
      const c =
        choices[d.index] ??
        (choices[d.index] = {
          index: d.index,
          text: '',
          tokens: 0,
          tokenIds: [],
          logprobs: [],
          finishReason: null,
          stopReason: null,
        });
      c.text += d.text;
      c.tokens += d.tokenIds.length;
      c.tokenIds.push(...d.tokenIds);
      if (d.logprobs) c.logprobs.push(...d.logprobs);
      if (d.finishReason) c.finishReason = d.finishReason;
      if (d.stopReason !== null) c.stopReason = d.stopReason;
    }
  }
  return choices;
}

export function totalTokens(choices: Choice[]): number {
  return choices.reduce((s, c) => s + c.tokens, 0);
}

const utf8 = new TextEncoder();
const bytes = (token: string) => [...utf8.encode(token)];

/** Chat's `logprobs.content` entries. */
export function chatLogprobs(lps: TokenLogprob[]) {
  return lps.map((lp) => ({
    token: lp.token,
    logprob: lp.logprob,
    bytes: bytes(lp.token),
    top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
  }));
}

/**
 * vLLM's truncate_prompt_tokens: the prompt's last `k` tokens (-1: the model's context length); more than the context
 * is refused, naming the field.
 */
export function truncatePrompt(ids: number[], k: number | null | undefined, contextLength: number): number[] {
  const keep = truncationLimit(k, contextLength);
  return keep !== null && ids.length > keep ? ids.slice(ids.length - keep) : ids;
}

/** The tokens vLLM's truncate_prompt_tokens keeps: null when absent, the context length for -1, else k (checked). */
export function truncationLimit(k: number | null | undefined, contextLength: number): number | null {
  if (k == null) return null;
  if (k > contextLength) {
    throw badRequest(
      `truncate_prompt_tokens ${k}: more than the model's context length (${contextLength})`,
      'truncate_prompt_tokens',
    );
  }
  return k === -1 ? contextLength : k;
}

/**
 * `outputs` passed through, keeping each prompt's logprobs as its request's first output brings them (by prompt:
 * choice index / n).
 */
export function withPromptLogprobs(outputs: AsyncIterable<RequestOutput>, n: number) {
  const byPrompt = new Map<number, (TokenLogprob | null)[]>();
  const tapped = (async function* () {
    for await (const out of outputs) {
      const first = out.outputs[0];
      if (out.promptLogprobs && first) byPrompt.set(Math.floor(first.index / n), out.promptLogprobs);
      yield out;
    }
  })();
  return { outputs: tapped, of: (choice: number) => byPrompt.get(Math.floor(choice / n)) ?? [] };
}

/**
 * vLLM's `prompt_logprobs`: per prompt token (the first has none: null) a map from token id to its logprob, rank and
 * text, for its top alternatives and the prompt's own token.
 */
export function vllmPromptLogprobs(lps: readonly (TokenLogprob | null)[]) {
  return lps.map(
    (lp) =>
      lp &&
      Object.fromEntries([
        ...lp.top.map((t, i) => [t.tokenId, { logprob: t.logprob, rank: i + 1, decoded_token: t.token }]),
        [lp.tokenId, { logprob: lp.logprob, rank: lp.rank ?? null, decoded_token: lp.token }],
      ]),
  );
}

/** The legacy completions `logprobs` object; `offset` is the text length before these tokens. */
export function completionLogprobs(lps: TokenLogprob[], offset: number) {
  const textOffset: number[] = [];
  let at = offset;
  for (const lp of lps) {
    textOffset.push(at);
    at += lp.token.length;
  }
  return {
    tokens: lps.map((lp) => lp.token),
    token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries(lp.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

/** vLLM's return_tokens_as_token_ids: the outputs with each logprob's token, and its alternatives', named "token_id:ID". */
export async function* tokensNamedById(outputs: AsyncIterable<RequestOutput>): AsyncGenerator<RequestOutput> {
  const named = (lp: TokenLogprob): TokenLogprob => ({
    ...lp,
    token: `token_id:${lp.tokenId}`,
    top: lp.top.map((t) => ({ ...t, token: `token_id:${t.tokenId}` })),
  });
  for await (const out of outputs) {
    yield {
      ...out,
      promptLogprobs: out.promptLogprobs?.map((lp) => lp && named(lp)) ?? out.promptLogprobs,
      outputs: out.outputs.map((d) => (d.logprobs ? { ...d, logprobs: d.logprobs.map(named) } : d)),
    };
  }
}

/**
 * vLLM's return_token_ids in a stream: each delta's token ids on the first entry `chunk` makes of it, or on an entry
 * of their own (`empty`) when it makes none (text held back), so that no id goes missing.
 */
export function withTokenIds(
  chunk: (d: CompletionDelta) => Record<string, unknown>[],
  empty: (index: number) => Record<string, unknown>,
): (d: CompletionDelta) => Record<string, unknown>[] {
  return (d) => {
    const out = chunk(d);
    if (d.tokenIds.length === 0) return out;
    if (out.length === 0) out.push(empty(d.index));
    out[0] = { ...out[0], token_ids: d.tokenIds };
    return out;
  };
}

/**
 * Streams OpenAI chunks as SSE: `chunk` turns one choice's delta into a chunk's choice entries (none to skip);
 * with include_usage every chunk carries `usage: null` (vLLM's continuous_usage_stats: the usage so far of the chunk's
 * choice) and a last chunk with `choices: []` carries the whole usage.
 */
export async function streamChunks(
  reply: FastifyReply,
  outputs: AsyncIterable<RequestOutput>,
  opts: {
    base: Record<string, unknown>;
    streamOptions: { include_usage?: boolean | null; continuous_usage_stats?: boolean | null } | null | undefined;
    promptTokens: number;
    /** The prompt tokens of a choice's own prompt (a batch of prompts), for its continuous usage; all of them else. */
    choicePromptTokens?: (index: number) => number;
    opening?: Record<string, unknown>[];
    /** Fields of the opening chunks besides `base`'s (chat's prompt_token_ids). */
    openingFields?: Record<string, unknown>;
    chunk(d: CompletionDelta): Record<string, unknown>[];
  },
): Promise<void> {
  const stream = new EventStream(reply, 'sse');
  const includeUsage = opts.streamOptions?.include_usage === true;
  const continuous = includeUsage && opts.streamOptions?.continuous_usage_stats === true;
  /** Tokens generated so far, by choice index. */
  const generated = new Map<number, number>();
  const send = (choices: Record<string, unknown>[], fields?: Record<string, unknown>) => {
    const index = choices[0]?.index as number;
    const prompt = opts.choicePromptTokens?.(index) ?? opts.promptTokens;
    const sofar = continuous ? usage(prompt, generated.get(index) ?? 0) : null;
    stream.send({ ...opts.base, ...fields, choices, ...(includeUsage && { usage: sofar }) });
  };
  try {
    for (const c of opts.opening ?? []) send([c], opts.openingFields);
    for await (const out of outputs) {
      for (const d of out.outputs) {
        generated.set(d.index, (generated.get(d.index) ?? 0) + d.tokenIds.length);
        for (const c of opts.chunk(d)) send([c]);
      }
      if (!stream.open) break;
    }
    const completionTokens = [...generated.values()].reduce((a, b) => a + b, 0);
    if (includeUsage) stream.send({ ...opts.base, choices: [], usage: usage(opts.promptTokens, completionTokens) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    stream.send({ error: { message, type: 'server_error', param: null, code: null } });
  }
  stream.end();
}
