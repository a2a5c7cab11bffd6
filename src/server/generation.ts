import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { GenerateRequest, RequestOutput, SamplingParams } from '../engine/types.ts';
import { UserError } from '../util/errors.ts';
import type { ServeConfig } from './config.ts';
import { ApiError } from './errors.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Lease, LoadedModel, ModelEntry, ModelRegistry } from './models.ts';
import type { ResponseStore } from './openai/response-store.ts';
import { type GenerationRecord, recordGeneration } from './request-log.ts';
import { clientGone } from './streaming.ts';

/** What every route handler gets. */
export interface ServerContext {
  config: ServeConfig;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  gate: AdmissionGate;
  /** The Responses API's stored responses. */
  responses: ResponseStore;
  version: string;
}

/**
 * Counts admitted generation requests per model: as many as the engine runs at once, plus up to `maxQueue` waiting;
 * the rest get 503 with Retry-After. Also remembers every in-flight request's abort controller so shutdown can cut
 * them off.
 */
export class AdmissionGate {
  private readonly active = new Map<string, number>();
  private readonly inflight = new Set<AbortController>();

  constructor(private readonly maxQueue: number) {}

  get size(): number {
    return this.inflight.size;
  }

  /** Admits a request whose `controller` shutdown may abort; `release` when it is done. */
  enter(model: string, maxRunning: number, controller: AbortController): { release(): void } {
    const n = this.active.get(model) ?? 0;
    const limit = maxRunning + this.maxQueue;
    if (n >= limit) {
      throw new ApiError(
        503,
        `server busy: ${n} requests for "${model}" are running or queued (limit ${limit})`,
        null,
        'server_busy',
        {
          'retry-after': '1',
        },
      );
    }
    this.active.set(model, n + 1);
    this.inflight.add(controller);
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.inflight.delete(controller);
        this.active.set(model, (this.active.get(model) ?? 1) - 1);
      },
    };
  }

  abortAll(reason: string): void {
    for (const c of this.inflight) c.abort(new Error(reason));
  }
}

/** A request admitted and holding its model loaded; `signal` fires on client disconnect or forced shutdown. */
export interface Admitted {
  entry: ModelEntry;
  lease: Lease;
  model: LoadedModel;
  signal: AbortSignal;
  arrival: number;
  /** Model, token counts and finish reasons for the request's log line. */
  record: GenerationRecord;
}

/** What a route asks of its model: text generation, or embeddings / rerank scores; `any` for the tokenizer's routes. */
export type ModelTask = 'generate' | 'pooling' | 'any';

/**
 * Resolves the model (404), loads it, checks it does the route's task (400), admits the request (503) unless it
 * only counts or converts tokens (`tokensOnly`: /tokenize, count_tokens, which take no room in the engine and never
 * wait behind it), runs `fn`, and always releases; `signal` fires when the client behind `reply` goes away, or for a
 * `detached` generation (one that outlives its request: a background response) only when that controller aborts.
 * Shutdown aborts both.
 */
export async function withModel<T>(
  ctx: ServerContext,
  modelField: unknown,
  reply: FastifyReply,
  keepAliveMs: number | undefined,
  fn: (a: Admitted) => Promise<T>,
  opts: { task?: ModelTask; tokensOnly?: boolean; detached?: AbortController } = {},
): Promise<T> {
  const arrival = performance.now();
  const entry = ctx.registry.resolve(modelField);
  const record = recordGeneration(reply, entry.name);
  // One controller for both ends (AbortSignal.any costs more than the rest of a small request's bookkeeping).
  const controller = opts.detached ?? new AbortController();
  const signal = opts.detached ? controller.signal : clientGone(reply.request, reply, controller);
  const lease = await ctx.registry.acquire(entry, keepAliveMs);
  try {
    const model = lease.resident.model;
    checkTask(entry.name, model, opts.task ?? 'generate');
    const ticket = opts.tokensOnly ? null : ctx.gate.enter(entry.name, model.maxRunning, controller);
    try {
      return await fn({ entry, lease, model, signal, arrival, record });
    } finally {
      ticket?.release();
    }
  } finally {
    // keep_alive 0 unloads the model before the request ends (Ollama's way to free its memory).
    if (keepAliveMs === 0) await lease.unload();
    else lease.release();
  }
}

/** One 400 when a text generator is asked for embeddings or rerank scores, or an embedding model to generate. */
function checkTask(name: string, model: LoadedModel, wants: ModelTask): void {
  const pooling = model.pooling;
  if (wants === 'pooling' && !pooling) {
    throw new ApiError(
      400,
      `model "${name}" generates text: it is not an embedding or reranking model`,
      'model',
      'model_not_supported',
    );
  }
  if (wants === 'generate' && pooling) {
    const [what, use] =
      pooling.engine.task === 'score'
        ? ['a reranking', '/v1/rerank']
        : ['an embedding', '/v1/embeddings or /api/embed'];
    throw new ApiError(
      400,
      `model "${name}" is ${what} model: it does not generate text (use ${use})`,
      'model',
      'model_not_supported',
    );
  }
}

/**
 * Request text as token ids, through the engine's one async call: long texts are tokenized in a worker, and a text
 * too long for the context is refused (400) before it is tokenized, unless `anyLength` (/tokenize counts anything).
 */
export async function encodePrompt(
  model: LoadedModel,
  text: string,
  addSpecialTokens: boolean,
  anyLength = false,
): Promise<number[]> {
  try {
    return await model.engine.encode(text, { addSpecialTokens, anyLength });
  } catch (err) {
    throw refused(err);
  }
}

/** The engine's refusal of a request (a UserError) as a 400 naming the field, under the route's name for it. */
export function refused(err: unknown, fieldNames: Record<string, string> = {}): unknown {
  if (!(err instanceof UserError)) return err;
  return new ApiError(400, err.message, err.field && (fieldNames[err.field] ?? err.field), err.code);
}

/** Timings and counts of one request as it streams, for responses, Ollama's final object and metrics. */
export interface GenerationTimes {
  start: number;
  firstToken: number | null;
  lastToken: number | null;
  promptTokens: number;
  generatedTokens: number;
}

/**
 * Runs one request on the engine, yielding its incremental outputs. Aborts the engine request when `signal` fires
 * (client gone, shutdown) and when the consumer stops iterating; records latency and token metrics. The engine's
 * refusals become 400s naming the field, under the route's own name for it when `fieldNames` has one.
 */
export async function* runEngine(
  ctx: ServerContext,
  a: Admitted,
  promptIds: number[],
  params: Partial<SamplingParams>,
  times: GenerationTimes,
  fieldNames: Record<string, string> = {},
  /** What the request asks besides sampling (a grammar, special tokens kept, a KV compression budget, a cache salt). */
  output: Pick<GenerateRequest, 'grammar' | 'skipSpecialTokens' | 'kvBudget' | 'cacheSalt'> = {},
): AsyncGenerator<RequestOutput> {
  const labels = { model_name: a.entry.name };
  const id = randomUUID();
  const { engine } = a.model;
  const onAbort = () => engine.abort(id);
  if (a.signal.aborted) return;
  a.signal.addEventListener('abort', onAbort, { once: true });
  times.promptTokens = promptIds.length;
  a.record.promptTokens += promptIds.length;
  // A request the engine refuses at submission (a UserError before any output) read no prompt: the metrics skip it.
  let started = false;
  let refusedAtSubmission = false;
  try {
    for await (const out of engine.generate({ id, prompt: promptIds, params, ...output })) {
      started = true;
      if (out.finished) ctx.metrics.requests.finished(labels, out.metrics);
      let tokens = 0;
      for (const o of out.outputs) {
        tokens += o.tokenIds.length;
        if (o.finishReason) {
          ctx.metrics.finished.inc({ ...labels, finished_reason: o.finishReason });
          a.record.finishReasons.push(o.finishReason);
        }
      }
      if (tokens > 0) {
        const now = performance.now();
        if (times.firstToken === null) {
          times.firstToken = now;
          ctx.metrics.ttft.observe(labels, (now - a.arrival) / 1000);
        } else if (times.lastToken !== null) {
          const gap = (now - times.lastToken) / 1000 / tokens;
          for (let i = 0; i < tokens; i++) ctx.metrics.interToken.observe(labels, gap);
        }
        times.lastToken = now;
        times.generatedTokens += tokens;
        a.record.completionTokens += tokens;
        ctx.metrics.generationTokens.inc(labels, tokens);
      }
      yield out;
      if (a.signal.aborted) break;
    }
  } catch (err) {
    refusedAtSubmission = !started && err instanceof UserError;
    throw refused(err, fieldNames);
  } finally {
    a.signal.removeEventListener('abort', onAbort);
    if (!refusedAtSubmission) {
      ctx.metrics.promptTokens.inc(labels, promptIds.length);
      ctx.metrics.e2e.observe(labels, (performance.now() - a.arrival) / 1000);
    }
  }
}

export function newTimes(): GenerationTimes {
  return { start: performance.now(), firstToken: null, lastToken: null, promptTokens: 0, generatedTokens: 0 };
}

/**
 * Waits for the engine's first output before any header is sent, so a request the engine refuses at submission
 * still gets a proper error status; then replays it followed by the rest.
 */
export async function primed<T>(source: AsyncGenerator<T>): Promise<AsyncGenerator<T>> {
  const first = await source.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* source;
  })();
}
