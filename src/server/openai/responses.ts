import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { prepareChat, templateKwargs } from '../chat-request.ts';
import { ApiError, badRequest, streamFailure } from '../errors.ts';
import { newTimes, primed, runEngine, type ServerContext, withModel } from '../generation.ts';
import { keepAliveMs } from '../ollama/options.ts';
import { type AnswerEnd, blockId, drainAnswer, OutputBlocks } from '../output-blocks.ts';
import { EventStream } from '../streaming.ts';
import { responsesGrammar } from '../structured-output.ts';
import { parseBody } from '../validate.ts';
import { BackgroundRun, type NumberedEvent } from './background-run.ts';
import { unixSeconds } from './common.ts';
import type { ResponseStore, StoredResponse } from './response-store.ts';
import { type ResponseEvent, ResponseOutput } from './responses-output.ts';
import {
  inputItems,
  type ResponsesRequest,
  responsesLogprobs,
  responsesMessages,
  responsesRequest,
  responsesToolChoice,
  responsesTools,
} from './responses-request.ts';

/**
 * POST /v1/responses: OpenAI's Responses API over the chat machinery (template, tools, structured output, reasoning
 * and tool-call parsing). Streams the API's named events. A response is kept (unless `store` is false) for GET
 * /v1/responses/{id}, its input items, DELETE, and a later request's `previous_response_id`, which puts that
 * response's conversation and output before the request's input (its `instructions` are not carried over, as the
 * API says).
 */
export function registerResponses(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/responses', async (request, reply) => {
    const body = parseBody(responsesRequest, request.body);
    if (body.background && body.store === false) {
      throw badRequest('background: a background response is stored, so store cannot be false', 'store');
    }
    const earlier = body.previous_response_id ? conversationOf(ctx.responses, body.previous_response_id) : [];
    const input = [...earlier, ...inputItems(body)];
    const messages = responsesMessages(body.instructions, input, earlier.length);
    const stored = (response: Record<string, unknown>, events?: NumberedEvent[]): StoredResponse => ({
      response,
      input: withIds(input),
      own: input.length - earlier.length,
      events,
    });
    const requested = { tools: responsesTools(body), choice: responsesToolChoice(body) };
    const structured = responsesGrammar(body.text?.format);
    // A background response is answered as queued once its prompt is ready; its run goes on without the request.
    let queued: (response: Record<string, unknown>) => void = () => {};
    const answeredEarly = new Promise<Record<string, unknown>>((resolve) => {
      queued = resolve;
    });
    const detached = body.background ? new AbortController() : undefined;
    const job = withModel(
      ctx,
      body.model,
      reply,
      keepAliveMs(body.keep_alive),
      async (a) => {
        const { ids, mode, output } = await prepareChat(a, {
          messages,
          tools: requested.tools,
          toolChoice: requested.choice,
          parallelToolCalls: body.parallel_tool_calls,
          parametersField: (i) => `tools[${i}].parameters`,
          kwargs: templateKwargs(body.chat_template_kwargs, body.reasoning?.effort),
          structured,
        });
        const params = {
          ...samplingFrom('openai', { ...body, max_tokens: body.max_output_tokens }),
          logprobs: responsesLogprobs(body),
        };
        const names = { max_tokens: 'max_output_tokens', logprobs: 'top_logprobs' };
        const salted = { ...output, cacheSalt: body.cache_salt ?? undefined };
        const generate = () => primed(runEngine(ctx, a, ids, params, newTimes(), names, salted));
        const shell = responseShell(body, a.entry.name);
        const id = shell.id as string;
        if (!body.stream && !detached) {
          const out = new ResponseOutput();
          const response = finished(
            shell,
            out,
            ids.length,
            await drainAnswer(await generate(), new OutputBlocks(mode, out)),
          );
          if (body.store !== false) ctx.responses.put(id, stored(response));
          return response;
        }
        // A stream waits for the engine's first output before any header, so a refused request keeps its status; a
        // background response without one is answered first, and a refusal fails it.
        let outputs = body.stream ? await generate() : undefined;
        const run = detached ? new BackgroundRun(detached, { ...shell, status: 'queued' }, body.stream === true) : null;
        if (run) ctx.responses.begin(id, run, stored(run.response));
        const stream = body.stream ? new EventStream(reply, 'sse', true) : null;
        let sequence = 0;
        const send = (e: ResponseEvent) => {
          const event = { ...e, sequence_number: sequence++ };
          run?.record(event);
          stream?.send(event);
        };
        send({ type: 'response.created', response: run?.response ?? shell });
        if (run && !stream) queued(run.response);
        const out = new ResponseOutput(send);
        const progress = { ...shell, status: 'in_progress', output: out.items };
        let response: Record<string, unknown>;
        try {
          outputs ??= await generate();
          if (run) run.response = progress;
          send({ type: 'response.in_progress', response: progress });
          // A background response's run goes on when its client goes away; a plain stream's stops.
          const open = () => !stream || run !== null || stream.open;
          const end = await drainAnswer(outputs, new OutputBlocks(mode, out, true), open);
          response = finished(shell, out, ids.length, end, run?.cancelled);
          send({ type: `response.${response.status}`, response });
        } catch (err) {
          // The API's two ends of a failed stream: the error, then the response as it stood, failed.
          const api = streamFailure(err, request.log);
          const error = { code: api.code ?? 'server_error', message: api.message };
          send({ type: 'error', ...error, param: api.param });
          response = { ...shell, status: 'failed', error, output: out.items };
          send({ type: 'response.failed', response });
        }
        if (run) ctx.responses.finish(id, run, stored(response, run.streamed ? run.events : undefined));
        else if (body.store !== false) ctx.responses.put(id, stored(response));
        stream?.end();
        return stream ? reply : response;
      },
      { detached },
    );
    return body.background && !body.stream ? Promise.race([answeredEarly, job]) : job;
  });

  app.get('/v1/responses/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = parseBody(retrieveQuery, request.query ?? {});
    const run = ctx.responses.running(id);
    if (query.stream !== 'true') return run?.response ?? storedResponse(ctx.responses, request.params).response;
    // A streamed background response's events again, past starting_after: as kept, then live until it ends.
    const events = run ?? storedResponse(ctx.responses, request.params).events;
    if (!(run ? run.streamed : events)) {
      throw badRequest('stream: only a background response created with stream: true can be streamed again', 'stream');
    }
    const after = query.starting_after ?? -1;
    const stream = new EventStream(reply, 'sse', true);
    if (run) {
      await new Promise<void>((resolve) => {
        const stop = run.follow(after, (e) => (e ? stream.send(e) : resolve()));
        reply.raw.once('close', () => {
          stop();
          resolve();
        });
      });
    } else for (const e of events as NumberedEvent[]) if (e.sequence_number > after) stream.send(e);
    stream.end();
    return reply;
  });

  app.post('/v1/responses/:id/cancel', async (request) => {
    const { id } = request.params as { id: string };
    const run = ctx.responses.running(id);
    if (run) {
      run.cancel();
      await run.whenEnded();
    }
    const { response } = storedResponse(ctx.responses, request.params);
    if (!response.background) throw badRequest('Cannot cancel a synchronous response.', 'response_id');
    return response;
  });

  app.delete('/v1/responses/:id', async (request) => {
    const { id } = request.params as { id: string };
    if (!ctx.responses.delete(id)) throw notFound(id);
    return { id, object: 'response', deleted: true };
  });

  app.get('/v1/responses/:id/input_items', async (request) => {
    // The request's own input items, as the API lists them (not those its previous_response_id brought).
    const { input, own } = storedResponse(ctx.responses, request.params);
    const query = parseBody(inputItemsQuery, request.query ?? {});
    const mine = input.slice(input.length - own);
    const ordered = query.order === 'asc' ? mine : mine.reverse();
    const start = query.after ? ordered.findIndex((item) => item.id === query.after) + 1 : 0;
    if (query.after && start === 0) throw badRequest(`after: no input item "${query.after}"`, 'after');
    const data = ordered.slice(start, start + query.limit);
    return {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: start + data.length < ordered.length,
    };
  });
}

/** GET /v1/responses/{id}'s query: `stream` (with `starting_after`) follows a streamed background response again. */
const retrieveQuery = z.strictObject({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(-1).optional(),
  include: z.unknown().optional(),
  'include[]': z.unknown().optional(),
  include_obfuscation: z.unknown().optional(),
});

/** GET /v1/responses/{id}/input_items' query: OpenAI's paging (newest first unless `order` is asc). */
const inputItemsQuery = z.strictObject({
  order: z.enum(['asc', 'desc']).default('desc'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(256).optional(),
  include: z.unknown().optional(),
});

const notFound = (id: string) =>
  new ApiError(404, `Response with id '${id.slice(0, 256)}' not found.`, 'response_id', 'not_found');

function storedResponse(store: ResponseStore, params: unknown): StoredResponse {
  const { id } = params as { id: string };
  const stored = store.get(id);
  if (!stored) throw notFound(id);
  return stored;
}

/** What `previous_response_id` names: that response's input items, then its output items. */
function conversationOf(store: ResponseStore, id: string): Record<string, unknown>[] {
  if (store.running(id)) {
    throw badRequest(`Previous response with id '${id}' is still in progress.`, 'previous_response_id');
  }
  const stored = store.get(id);
  if (!stored) {
    throw badRequest(
      `Previous response with id '${id}' not found.`,
      'previous_response_id',
      'previous_response_not_found',
    );
  }
  return [...stored.input, ...(stored.response.output as Record<string, unknown>[])];
}

/**
 * Input items as stored and listed: each with its type (a bare message's is `message`) and an id (the client's, or
 * one given here) for input_items' paging.
 */
function withIds(items: Record<string, unknown>[]): Record<string, unknown>[] {
  const prefix: Record<string, string> = { function_call: 'fc', function_call_output: 'fco', reasoning: 'rs' };
  return items.map((item) => {
    const type = String(item.type ?? 'message');
    return { ...item, id: typeof item.id === 'string' ? item.id : blockId(prefix[type] ?? 'msg'), type };
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
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store !== false,
    background: body.background ?? false,
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
 * The whole response: its output items, status (incomplete: cut at max_output_tokens; cancelled: a background response
 * cancelled; failed: aborted, as at a forced shutdown) and usage.
 */
function finished(
  shell: Record<string, unknown>,
  out: ResponseOutput,
  inputTokens: number,
  end: AnswerEnd,
  cancelled = false,
) {
  const status =
    end.reason === 'stop' ? 'completed' : end.reason === 'length' ? 'incomplete' : cancelled ? 'cancelled' : 'failed';
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
