import type { FastifyInstance } from 'fastify';
import type { CompletionDelta } from '../../engine/types.ts';
import { badRequest } from '../errors.ts';
import {
  encodePrompt,
  newTimes,
  primed,
  resolveMaxTokens,
  runEngine,
  type ServerContext,
  withModel,
} from '../generation.ts';
import type { LoadedModel } from '../models.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { clientGone } from '../streaming.ts';
import { parseBody } from '../validate.ts';
import {
  collectChoices,
  completionId,
  completionLogprobs,
  streamChunks,
  totalTokens,
  unixSeconds,
  usage,
} from './common.ts';
import { samplingParams } from './sampling.ts';
import { type CompletionRequest, completionRequest } from './schemas.ts';

/** The prompt as token ids and as text (for echo); strings get the tokenizer's special tokens (BOS). */
function promptOf(model: LoadedModel, prompt: CompletionRequest['prompt']): { ids: number[]; text: string } {
  const one = Array.isArray(prompt) && (typeof prompt[0] === 'string' || Array.isArray(prompt[0])) ? prompt[0] : prompt;
  if (typeof one === 'string') return { ids: encodePrompt(model, one, true), text: one };
  const ids = one as number[];
  const vocab = model.tokenizer.vocabSize;
  const bad = ids.find((id) => id >= vocab);
  if (bad !== undefined)
    throw badRequest(`prompt: token id ${bad} is not in this model's vocabulary (0..${vocab - 1})`, 'prompt');
  return { ids, text: model.tokenizer.decode(ids) };
}

/** POST /v1/completions */
export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', async (request, reply) => {
    const body = parseBody(completionRequest, request.body);
    if (body.echo && body.logprobs !== null && body.logprobs !== undefined) {
      throw badRequest('echo together with logprobs (prompt logprobs) is not supported', 'echo');
    }
    if (body.stream_options && !body.stream)
      throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
    return withModel(ctx, body.model, clientGone(request, reply), keepAliveMs(body.keep_alive), async (a) => {
      const prompt = promptOf(a.model, body.prompt);
      const maxTokens = resolveMaxTokens(prompt.ids.length, a.model.contextLength, body.max_tokens, true, 'max_tokens');
      const logprobs = body.logprobs ?? null;
      const params = samplingParams(body, maxTokens, logprobs, a.model.tokenizer.vocabSize);
      const n = params.n ?? 1;
      const echo = body.echo ? prompt.text : '';
      const outputs = await primed(runEngine(ctx, a, prompt.ids, params, newTimes()));
      const base = { id: completionId('cmpl'), object: 'text_completion', created: unixSeconds(), model: a.entry.name };

      if (body.stream) {
        const offsets = new Map<number, number>();
        const chunk = (d: CompletionDelta) => {
          const offset = offsets.get(d.index) ?? echo.length;
          offsets.set(d.index, offset + d.text.length);
          const lp = logprobs === null ? null : completionLogprobs(d.logprobs ?? [], offset);
          if (!d.text && !d.finishReason && !d.logprobs?.length) return [];
          return [
            { index: d.index, text: d.text, logprobs: lp, finish_reason: d.finishReason, stop_reason: d.stopReason },
          ];
        };
        const opening = echo
          ? Array.from({ length: n }, (_, index) => ({ index, text: echo, logprobs: null, finish_reason: null }))
          : [];
        await streamChunks(reply, outputs, {
          base,
          streamOptions: body.stream_options,
          promptTokens: prompt.ids.length,
          opening,
          chunk,
        });
        return reply;
      }

      const choices = await collectChoices(outputs, n);
      return {
        ...base,
        choices: choices.map((c) => ({
          index: c.index,
          text: echo + c.text,
          logprobs: logprobs === null ? null : completionLogprobs(c.logprobs, echo.length),
          finish_reason: c.finishReason,
          stop_reason: c.stopReason,
        })),
        usage: usage(prompt.ids.length, totalTokens(choices)),
      };
    });
  });
}
