import type { FastifyInstance } from 'fastify';
import { prepareChat, templateKwargs } from '../chat-request.ts';
import { badRequest } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { openaiGrammar } from '../structured-output.ts';
import { parseBody } from '../validate.ts';
import { chatChunker, chatMessage, toMessages } from './chat-message.ts';
import {
  chatLogprobs,
  collectChoices,
  completionId,
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
import { chatRequest } from './schemas.ts';

/** POST /v1/chat/completions */
export function registerChatCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(chatRequest, request.body);
    if (body.top_logprobs && !body.logprobs) throw badRequest('top_logprobs requires logprobs: true', 'top_logprobs');
    if (body.stream_options && !body.stream)
      throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
    if (body.continue_final_message && body.add_generation_prompt) {
      throw badRequest(
        'continue_final_message and add_generation_prompt cannot both be true',
        'continue_final_message',
      );
    }
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const chat = await prepareChat(a, {
        messages: toMessages(body.messages),
        tools: body.tools,
        toolChoice: body.tool_choice,
        parallelToolCalls: body.parallel_tool_calls,
        kwargs: templateKwargs(body.chat_template_kwargs, body.reasoning_effort),
        addGenerationPrompt: body.add_generation_prompt ?? undefined,
        continueFinalMessage: body.continue_final_message ? 'required' : undefined,
        structured: openaiGrammar(body),
        encode: body.truncate_prompt_tokens == null ? undefined : { anyLength: true },
        skipSpecialTokens: body.skip_special_tokens ?? undefined,
      });
      const { mode } = chat;
      // vLLM's rule: the server's response role where the prompt opens a new turn, else the last message's role.
      const role =
        body.add_generation_prompt === false ? (body.messages.at(-1)?.role ?? 'assistant') : ctx.config.responseRole;
      const promptIds = truncatePrompt(chat.ids, body.truncate_prompt_tokens, a.model.contextLength);
      // max_completion_tokens is chat's newer name for max_tokens.
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      // The engine names max_tokens (and logprobs) as vLLM does; say what this request sent.
      const fieldNames = {
        ...(body.max_completion_tokens ? { max_tokens: 'max_completion_tokens' } : {}),
        logprobs: 'top_logprobs',
      };
      const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
      const params = samplingParams({ ...body, max_tokens: maxTokens }, logprobs, a.model.tokenizer);
      const n = params.n ?? 1;
      const output = { ...chat.output, kvBudget: body.kv_budget ?? undefined, cacheSalt: body.cache_salt ?? undefined };
      const run = await primed(runEngine(ctx, a, promptIds, params, newTimes(), fieldNames, output));
      const outputs = body.return_tokens_as_token_ids ? tokensNamedById(run) : run;
      const tokenIds = body.return_token_ids === true;
      const base = {
        id: completionId('chatcmpl'),
        object: 'chat.completion.chunk',
        created: unixSeconds(),
        model: a.entry.name,
      };

      if (body.stream) {
        const chunker = chatChunker(mode);
        const chunk = tokenIds
          ? withTokenIds(chunker, (index) => ({ index, delta: {}, logprobs: null, finish_reason: null }))
          : chunker;
        const opening = Array.from({ length: n }, (_, index) => ({
          index,
          delta: { role, content: '' },
          logprobs: null,
          finish_reason: null,
        }));
        await streamChunks(reply, outputs, {
          base,
          streamOptions: body.stream_options,
          promptTokens: promptIds.length,
          opening,
          openingFields: tokenIds ? { prompt_token_ids: promptIds } : undefined,
          chunk,
        });
        return reply;
      }

      const scored = withPromptLogprobs(outputs, n);
      const choices = await collectChoices(scored.outputs, n);
      return {
        ...base,
        object: 'chat.completion',
        ...(body.prompt_logprobs != null && { prompt_logprobs: vllmPromptLogprobs(scored.of(0)) }),
        ...(tokenIds && { prompt_token_ids: promptIds }),
        choices: choices.map((c) => ({
          index: c.index,
          ...chatMessage(mode, role, c.text, c.finishReason),
          logprobs: logprobs === null ? null : { content: chatLogprobs(c.logprobs) },
          stop_reason: c.stopReason,
          ...(tokenIds && { token_ids: c.tokenIds }),
        })),
        usage: usage(promptIds.length, totalTokens(choices)),
      };
    });
  });
}
