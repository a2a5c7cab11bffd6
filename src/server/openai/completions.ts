import type { FastifyInstance } from 'fastify';
import type { CompletionDelta, TokenLogprob } from '../../engine/types.ts';
import { badRequest } from '../errors.ts';
import { infillIds } from '../fill-in-middle.ts';
import {
  type Admitted,
  encodePrompt,
  newTimes,
  primed,
  runEngine,
  type ServerContext,
  withModel,
} from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { openaiGrammar } from '../structured-output.ts';
import { parseBody } from '../validate.ts';
import { mergeOutputs, promptList } from './batch.ts';
import {
  collectChoices,
  completionId,
  completionLogprobs,
  streamChunks,
  tokensNamedById,
  totalTokens,
  truncatePrompt,
  unixSeconds,
  usage,
  vllmPromptLogprobs,
  withPromptLogprobs,
  withTokenIds,
} from './common.ts';
import { samplingParams } from './sampling.ts';
import { type CompletionRequest, completionRequest } from './schemas.ts';

/**
 * A prompt as token ids and as text (for echo); strings get the tokenizer's special tokens (BOS), or with a `suffix`
 * become the fill-in-the-middle prompt around the gap. The engine checks token ids against the model's vocabulary.
 */
async function promptOf(
  a: Admitted,
  prompt: string | number[],
  body: Pick<CompletionRequest, 'suffix' | 'truncate_prompt_tokens'>,
): Promise<{ ids: number[]; text: string }> {
  const { model } = a;
  const { suffix, truncate_prompt_tokens: truncate } = body;
  if (suffix && truncate != null) {
    throw badRequest('truncate_prompt_tokens cannot be combined with suffix (it would cut the prefix)', 'suffix');
  }
  if (typeof prompt !== 'string') {
    if (suffix) throw badRequest('suffix needs text prompts, not token ids', 'suffix');
    const ids = truncatePrompt(prompt, truncate, model.contextLength);
    return { ids, text: model.tokenizer.decode(ids) };
  }
  if (suffix) return { ids: await infillIds(model, a.entry.name, prompt, suffix), text: prompt };
  if (truncate == null) return { ids: await encodePrompt(model, prompt, true), text: prompt };
  // Cut to its last tokens: any length is taken, and the echo is what is left.
  const all = await encodePrompt(model, prompt, true, true);
  const ids = truncatePrompt(all, truncate, model.contextLength);
  return { ids, text: ids.length < all.length ? model.tokenizer.decode(ids) : prompt };
}

/** POST /v1/completions; a list of prompts is answered with n choices per prompt (index = prompt * n + sample). */
export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (request, reply) => {
    const body = parseBody(completionRequest, request.body);
    // echo with logprobs scores the prompt too (lm-evaluation-harness's loglikelihood requests).
    const echoLogprobs = body.echo === true && body.logprobs != null;
    if (echoLogprobs && body.stream) {
      throw badRequest("echo with logprobs cannot be streamed (the prompt's logprobs come whole)", 'echo');
    }
    if (body.stream_options && !body.stream)
      throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const prompts = await Promise.all(promptList(body.prompt).map((p) => promptOf(a, p, body)));
      const logprobs = body.logprobs ?? null;
      // The legacy API's default answer is 16 tokens (OpenAI's and vLLM's), not the rest of the context.
      const params = samplingParams({ ...body, max_tokens: body.max_tokens ?? 16 }, logprobs, a.model.tokenizer);
      if (echoLogprobs) params.promptLogprobs = Math.max(params.promptLogprobs ?? 0, logprobs!);
      const grammar = openaiGrammar(body);
      const n = params.n ?? 1;
      const echoOf = (index: number) => (body.echo ? prompts[Math.floor(index / n)].text : '');
      const promptTokens = prompts.reduce((sum, p) => sum + p.ids.length, 0);
      // Ends whatever is still running when the answer ends early (a refused prompt, a client gone).
      const batch = new AbortController();
      const admitted = { ...a, signal: AbortSignal.any([a.signal, batch.signal]) };
      try {
        const sources = await Promise.all(
          prompts.map((prompt) =>
            primed(
              runEngine(
                ctx,
                admitted,
                prompt.ids,
                params,
                newTimes(),
                {},
                {
                  grammar,
                  kvBudget: body.kv_budget ?? undefined,
                  cacheSalt: body.cache_salt ?? undefined,
                  skipSpecialTokens: body.skip_special_tokens ?? undefined,
                },
              ),
            ),
          ),
        );
        const merged = mergeOutputs(sources, n);
        const byId = body.return_tokens_as_token_ids === true;
        const outputs = byId ? tokensNamedById(merged) : merged;
        const tokenIds = body.return_token_ids === true;
        const promptIdsOf = (index: number) => prompts[Math.floor(index / n)]!.ids;
        const base = {
          id: completionId('cmpl'),
          object: 'text_completion',
          created: unixSeconds(),
          model: a.entry.name,
        };

        if (body.stream) {
          const offsets = new Map<number, number>();
          const entry = (index: number, fields: Record<string, unknown>) => {
            // return_token_ids: a choice's first entry carries its prompt's ids too.
            const first = tokenIds && !offsets.has(index);
            const offset = offsets.get(index) ?? echoOf(index).length;
            offsets.set(index, offset + ((fields.text as string | undefined)?.length ?? 0));
            return { index, ...fields, ...(first && { prompt_token_ids: promptIdsOf(index) }) };
          };
          const chunker = (d: CompletionDelta) => {
            const offset = offsets.get(d.index) ?? echoOf(d.index).length;
            const lp = logprobs === null ? null : completionLogprobs(d.logprobs ?? [], offset);
            if (!d.text && !d.finishReason && !d.logprobs?.length) return [];
            return [
              entry(d.index, { text: d.text, logprobs: lp, finish_reason: d.finishReason, stop_reason: d.stopReason }),
            ];
          };
          const chunk = tokenIds
            ? withTokenIds(chunker, (index) => entry(index, { text: '', logprobs: null, finish_reason: null }))
            : chunker;
          const opening = body.echo
            ? Array.from({ length: prompts.length * n }, (_, index) =>
                entry(index, { text: echoOf(index), logprobs: null, finish_reason: null }),
              )
            : [];
          await streamChunks(reply, outputs, {
            base,
            streamOptions: body.stream_options,
            promptTokens,
            choicePromptTokens: (index) => prompts[Math.floor(index / n)]!.ids.length,
            opening,
            chunk,
          });
          return reply;
        }

        const scoredPrompts = withPromptLogprobs(outputs, n);
        const choices = await collectChoices(scoredPrompts.outputs, prompts.length * n);
        const scored = scoredPrompts.of;
        return {
          ...base,
          choices: choices.map((c) => ({
            index: c.index,
            text: echoOf(c.index) + c.text,
            logprobs:
              logprobs === null
                ? null
                : echoLogprobs
                  ? echoedLogprobs(
                      scored(c.index),
                      promptIdsOf(c.index),
                      byId ? (id) => `token_id:${id}` : (id) => a.model.tokenizer.decode([id]),
                      logprobs,
                      c.logprobs,
                    )
                  : completionLogprobs(c.logprobs, echoOf(c.index).length),
            ...(body.prompt_logprobs != null && { prompt_logprobs: vllmPromptLogprobs(scored(c.index)) }),
            finish_reason: c.finishReason,
            stop_reason: c.stopReason,
            ...(tokenIds && { prompt_token_ids: promptIdsOf(c.index), token_ids: c.tokenIds }),
          })),
          usage: usage(promptTokens, totalTokens(choices)),
        };
      } finally {
        batch.abort(new Error('the answer has ended'));
      }
    });
  });
}

/**
 * echo with logprobs: the legacy logprobs object over the prompt's tokens, then the answer's. The first prompt token
 * has none (null, as OpenAI and vLLM write it); each other's alternatives are its top `k` and itself.
 */
function echoedLogprobs(
  prompt: readonly (TokenLogprob | null)[],
  ids: readonly number[],
  tokenText: (id: number) => string,
  k: number,
  answer: TokenLogprob[],
) {
  const tokens: string[] = [];
  const tokenLogprobs: (number | null)[] = [];
  const top: (Record<string, number> | null)[] = [];
  const offsets: number[] = [];
  let at = 0;
  ids.forEach((id, i) => {
    const lp = prompt[i] ?? null;
    const token = lp?.token ?? tokenText(id);
    tokens.push(token);
    offsets.push(at);
    at += token.length;
    tokenLogprobs.push(lp ? lp.logprob : null);
    top.push(lp ? Object.fromEntries([...lp.top.slice(0, k), lp].map((t) => [t.token, t.logprob])) : null);
  });
  const tail = completionLogprobs(answer, at);
  return {
    tokens: [...tokens, ...tail.tokens],
    token_logprobs: [...tokenLogprobs, ...tail.token_logprobs],
    top_logprobs: [...top, ...tail.top_logprobs],
    text_offset: [...offsets, ...tail.text_offset],
  };
}
