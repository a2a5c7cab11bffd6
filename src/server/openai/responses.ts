import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { prepareChat } from '../chat-request.ts';
import { streamFailure } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { type AnswerEnd, drainAnswer, OutputBlocks } from '../output-blocks.ts';
import { EventStream } from '../streaming.ts';
import { responsesGrammar } from '../structured-output.ts';
import { parseBody } from '../validate.ts';
import { unixSeconds } from './common.ts';
import { type ResponseEvent, ResponseOutput } from './responses-output.ts';
import {
  type ResponsesRequest,
  responsesMessages,
  responsesRequest,
  responsesToolChoice,
  responsesTools,
} from './responses-request.ts';

/**
 * POST /v1/responses: OpenAI's Responses API over the chat machinery (template, tools, structured output, reasoning
 * and tool-call parsing), stateless: nothing is stored, so `previous_response_id` is refused and the conversation
 * comes whole in `input`. Streams the API's named events.
 */
export function registerResponses(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/responses', async (request, reply) => {
    const body = parseBody(responsesRequest, request.body);
    const messages = responsesMessages(body);
    const requested = { tools: responsesTools(body), choice: responsesToolChoice(body) };
    const structured = responsesGrammar(body.text?.format);
    return withModel(ctx, body.model, reply, keepAliveMs(body.keep_alive), async (a) => {
      const { ids, mode, output } = await prepareChat(a, {
        messages,
        tools: requested.tools,
        toolChoice: requested.choice,
        parallelToolCalls: body.parallel_tool_calls,
        kwargs: body.chat_template_kwargs ?? undefined,
        structured,
      });
      const params = samplingFrom('openai', { ...body, max_tokens: body.max_output_tokens });
      const outputs = await primed(
        runEngine(ctx, a, ids, params, newTimes(), { max_tokens: 'max_output_tokens' }, output),
      );
      const shell = responseShell(body, a.entry.name);
      if (!body.stream) {
        const out = new ResponseOutput();
        return finished(shell, out, ids.length, await drainAnswer(outputs, new OutputBlocks(mode, out)));
      }
      const stream = new EventStream(reply, 'sse', true);
      let sequence = 0;
      const send = (e: ResponseEvent) => stream.send({ ...e, sequence_number: sequence++ });
      send({ type: 'response.created', response: shell });
      send({ type: 'response.in_progress', response: shell });
      const out = new ResponseOutput(send);
      try {
        const end = await drainAnswer(outputs, new OutputBlocks(mode, out), () => stream.open);
        const response = finished(shell, out, ids.length, end);
        send({ type: `response.${response.status}`, response });
      } catch (err) {
        // The API's two ends of a failed stream: the error, then the response as it stood, failed.
        const api = streamFailure(err, request.log);
        const error = { code: api.code ?? 'server_error', message: api.message };
        send({ type: 'error', ...error, param: api.param });
        send({ type: 'response.failed', response: { ...shell, status: 'failed', error, output: out.items } });
      }
      stream.end();
      return reply;
    });
  });
}

/** The response object before any output: what was asked, status in progress. */
function responseShell(body: ResponsesRequest, model: string): Record<string, unknown> {
  return {
    id: `resp_${randomBytes(16).toString('hex')}`,
    object: 'response',
    created_at: unixSeconds(),
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    metadata: body.metadata ?? {},
  };
}

/**
 * The whole response: its output items, status (incomplete: cut at max_output_tokens; failed: aborted, as at a forced
 * shutdown) and usage.
 */
function finished(shell: Record<string, unknown>, out: ResponseOutput, inputTokens: number, end: AnswerEnd) {
  const status = end.reason === 'stop' ? 'completed' : end.reason === 'length' ? 'incomplete' : 'failed';
  return {
    ...shell,
    status,
    error: status === 'failed' ? { code: 'server_error', message: 'the generation was aborted' } : null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    output: out.items,
    output_text: out.text,
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: end.cachedTokens, cache_write_tokens: 0 },
      output_tokens: end.outputTokens,
      output_tokens_details: { reasoning_tokens: end.reasoningTokens },
      total_tokens: inputTokens + end.outputTokens,
    },
  };
}
