import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { FinishReason, RequestOutput, TokenLogprob } from '../../engine/types.ts';
import type { CallEvent } from '../../tools/call-log.ts';
import type { ParsedToolCall } from '../../tools/tool-parser.ts';
import { afterReasoning, type ChatOutputMode, ChatOutputParser } from '../chat-output.ts';
import { type Admitted, type GenerationTimes, newTimes, primed, runEngine, type ServerContext } from '../generation.ts';
import { EventStream } from '../streaming.ts';
import { type ollamaFormat, ollamaGrammar } from '../structured-output.ts';
import { samplingFromOptions, withStoredParameters } from './options.ts';
import type { Options } from './schemas.ts';

const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

function logprobsOf(lps: TokenLogprob[]) {
  return lps.map((lp) => ({
    token: lp.token,
    logprob: lp.logprob,
    top_logprobs: lp.top.map((t) => ({ token: t.token, logprob: t.logprob })),
  }));
}

/** What a piece carries besides its text: thinking, and the calls once parsed. */
export interface PieceExtra {
  thinking: string;
  calls: ParsedToolCall[];
}

/** The calls that ended among a stream's call events: Ollama streams each call whole, once it is complete. */
function endedCalls(events: CallEvent[]): ParsedToolCall[] {
  return events.flatMap((e) => (e.type === 'end' ? [e.call] : []));
}

/** The final object's timings and counts, Ollama-style (durations in nanoseconds). */
function stats(a: Admitted, times: GenerationTimes) {
  const now = performance.now();
  const first = times.firstToken ?? now;
  return {
    total_duration: ns(now - a.arrival),
    load_duration: ns(a.lease.loadMs),
    prompt_eval_count: times.promptTokens,
    prompt_eval_duration: ns(first - times.start),
    eval_count: times.generatedTokens,
    eval_duration: ns((times.lastToken ?? first) - first),
  };
}

/**
 * Answers /api/generate or /api/chat: NDJSON pieces then a final `done: true` object, or one object when not
 * streaming. `piece` wraps text in the endpoint's field (`response` or `message`); `final` adds endpoint extras.
 */
export async function respond(
  reply: FastifyReply,
  outputs: AsyncIterable<RequestOutput>,
  opts: {
    stream: boolean;
    a: Admitted;
    times: GenerationTimes;
    wantLogprobs: boolean;
    piece(text: string, extra?: PieceExtra): Record<string, unknown>;
    final?(generatedIds: number[]): Record<string, unknown>;
    /** Splits thinking and tool calls from the content (chat with think or tools). */
    mode?: ChatOutputMode;
  },
): Promise<unknown> {
  const parser = opts.mode ? new ChatOutputParser(opts.mode, opts.stream) : null;
  const model = opts.a.entry.name;
  const stream = opts.stream ? new EventStream(reply, 'ndjson') : null;
  let text = '';
  let reason: FinishReason | null = null;
  const ids: number[] = [];
  const lps: TokenLogprob[] = [];
  try {
    for await (const out of outputs) {
      for (const d of out.outputs) {
        ids.push(...d.tokenIds);
        if (d.finishReason) reason = d.finishReason;
        if (stream) {
          const part = parser ? parser.push(d.text) : { content: d.text, reasoning: '', events: [] };
          const calls = endedCalls(part.events);
          if (!part.content && !part.reasoning && !calls.length && !d.logprobs?.length) continue;
          const lp = opts.wantLogprobs ? { logprobs: logprobsOf(d.logprobs ?? []) } : {};
          const piece = opts.piece(part.content, { thinking: part.reasoning, calls });
          stream.send({ model, created_at: new Date().toISOString(), ...piece, done: false, ...lp });
        } else {
          text += d.text;
          if (d.logprobs) lps.push(...d.logprobs);
        }
      }
      if (stream && !stream.open) break;
    }
  } catch (err) {
    if (!stream) throw err;
    stream.send({ error: err instanceof Error ? err.message : String(err) });
    stream.end();
    return reply;
  }
  let lastPiece = opts.piece(stream ? '' : text);
  if (parser) {
    const whole = stream ? { content: '', reasoning: '' } : parser.push(text);
    const end = parser.finish();
    const extra = { thinking: whole.reasoning + end.reasoning, calls: stream ? endedCalls(end.events) : end.calls };
    if (!stream) lastPiece = opts.piece(whole.content + end.content, extra);
    else if (end.content || end.reasoning || extra.calls.length) {
      // The calls the end completed (a stream sent each earlier one as it was complete), before the final object.
      stream.send({ model, created_at: new Date().toISOString(), ...opts.piece(end.content, extra), done: false });
    }
  }
  const last = {
    model,
    created_at: new Date().toISOString(),
    ...lastPiece,
    done: true,
    done_reason: reason ?? 'stop',
    ...(opts.final?.(ids) ?? {}),
    ...stats(opts.a, opts.times),
    ...(opts.wantLogprobs && !stream ? { logprobs: logprobsOf(lps) } : {}),
  };
  if (!stream) return last;
  stream.send(last);
  stream.end();
  return reply;
}

/** The answer to a request with nothing to generate: Ollama's way to load (or, with keep_alive 0, unload) a model. */
export function loadOnly(model: string, piece: Record<string, unknown>, unloaded: boolean) {
  return {
    model,
    created_at: new Date().toISOString(),
    ...piece,
    done: true,
    done_reason: unloaded ? 'unload' : 'load',
  };
}

/**
 * Ollama's unload request (no prompt, keep_alive 0) for a model neither loaded nor loading: answered at once, as
 * Ollama answers it, instead of loading the model to unload it. Null when there is a model to unload (the usual
 * path); an unknown model is the usual 404.
 */
export function unloadedAlready(ctx: ServerContext, modelField: unknown, piece: Record<string, unknown>) {
  const { name } = ctx.registry.resolve(modelField);
  const held = ctx.registry.resident().some((r) => r.entry.name === name) || ctx.registry.loading().includes(name);
  return held ? null : loadOnly(name, piece, true);
}

/** Runs prompt `ids` with the request's options (stored Modelfile parameters beneath them) and answers as `respond`. */
export async function generateAndRespond(
  ctx: ServerContext,
  reply: FastifyReply,
  a: Admitted,
  ids: number[],
  body: {
    options?: Options | null;
    logprobs?: boolean | null;
    top_logprobs?: number | null;
    stream?: boolean | null;
    format?: z.output<typeof ollamaFormat> | null;
  },
  shape: Pick<Parameters<typeof respond>[2], 'piece' | 'final' | 'mode'>,
): Promise<unknown> {
  const logprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
  const params = samplingFromOptions(
    withStoredParameters(body.options, a.model.parameters),
    ids.length,
    a.model.contextLength,
    logprobs,
  );
  const times = newTimes();
  // Tool-call markers may be special tokens: keep them where calls are parsed. With `think`, the format holds after it.
  const output = {
    grammar: afterReasoning(ollamaGrammar(body.format), shape.mode?.reasoning ?? null),
    skipSpecialTokens: !shape.mode?.tools?.tags.length,
    kvBudget: body.options?.kv_budget ?? undefined,
  };
  const outputs = await primed(runEngine(ctx, a, ids, params, times, {}, output));
  return respond(reply, outputs, {
    stream: body.stream !== false,
    a,
    times,
    wantLogprobs: logprobs !== null,
    ...shape,
  });
}
