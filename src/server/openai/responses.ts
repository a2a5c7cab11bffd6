import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { RequestOutput } from '../../engine/types.ts';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { reasoningMode } from '../chat-output.ts';
import { encodeChat } from '../chat-template.ts';
import { badRequest } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { EventStream } from '../streaming.ts';
import { responsesGrammar } from '../structured-output.ts';
import { resolveTools } from '../tool-requests.ts';
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

/** Tokens in and out, as the Responses API counts them (cached: prompt tokens served from the prefix cache). */
interface Counts {
  input: number;
  cached: number;
  output: number;
}

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
      const tools = resolveTools(
        a.model.chatTemplate,
        a.entry.name,
        requested.tools,
        requested.choice,
        body.parallel_tool_calls,
      );
      if (tools.grammar && structured) {
        throw badRequest('tool_choice "required" or a named function does not combine with text.format', 'tool_choice');
      }
      const render = { tools: tools.templateTools, kwargs: body.chat_template_kwargs ?? undefined };
      const { prompt, ids } = await encodeChat(a.model, a.entry.name, messages, render);
      const mode = { reasoning: reasoningMode(a.model.chatTemplate?.source ?? '', prompt), tools: tools.format };
      const params = samplingFrom('openai', {
        temperature: body.temperature,
        top_p: body.top_p,
        max_tokens: body.max_output_tokens,
      });
      const output = { grammar: tools.grammar ?? structured, skipSpecialTokens: tools.format?.start == null };
      const outputs = await primed(
        runEngine(ctx, a, ids, params, newTimes(), { max_tokens: 'max_output_tokens' }, output),
      );
      const shell = responseShell(body, a.entry.name);
      const counts: Counts = { input: ids.length, cached: 0, output: 0 };
      if (!body.stream) {
        const out = new ResponseOutput(mode);
        const complete = await drain(outputs, out, counts);
        return finished(shell, out, complete, counts);
      }
      const stream = new EventStream(reply, 'sse', true);
      let sequence = 0;
      const send = (e: ResponseEvent) => stream.send({ ...e, sequence_number: sequence++ });
      send({ type: 'response.created', response: shell });
      send({ type: 'response.in_progress', response: shell });
      const out = new ResponseOutput(mode, send);
      try {
        const complete = await drain(outputs, out, counts, () => stream.open);
        const response = finished(shell, out, complete, counts);
        send({ type: complete ? 'response.completed' : 'response.incomplete', response });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        send({ type: 'error', code: 'server_error', message, param: null });
      }
      stream.end();
      return reply;
    });
  });
}

/**
 * Feeds the completion's text to `out` until it ends (or `open` says the client went away); true when it stopped on
 * its own rather than at max_output_tokens.
 */
async function drain(
  outputs: AsyncIterable<RequestOutput>,
  out: ResponseOutput,
  counts: Counts,
  open: () => boolean = () => true,
): Promise<boolean> {
  for await (const o of outputs) {
    counts.cached = o.metrics?.cachedPromptTokens ?? counts.cached;
    for (const d of o.outputs) {
      counts.output += d.tokenIds.length;
      out.push(d.text);
      if (d.finishReason) {
        const complete = d.finishReason !== 'length';
        out.finish(complete);
        return complete;
      }
    }
    if (!open()) break;
  }
  return true;
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

/** The whole response: its output items, status and usage. */
function finished(shell: Record<string, unknown>, out: ResponseOutput, complete: boolean, counts: Counts) {
  return {
    ...shell,
    status: complete ? 'completed' : 'incomplete',
    incomplete_details: complete ? null : { reason: 'max_output_tokens' },
    output: out.items,
    output_text: out.text,
    usage: {
      input_tokens: counts.input,
      input_tokens_details: { cached_tokens: counts.cached },
      output_tokens: counts.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: counts.input + counts.output,
    },
  };
}
