import type { GrammarService } from '../grammar/grammar-service.ts';
import { inlineEncoder, type PromptEncoder } from '../loader/background-tokenizer.ts';
import type { TextTokenizer } from '../loader/tokenizer.ts';
import type { KvCompressionConfig } from '../primitives/kv-compression.ts';
import type { StepRunner } from '../runner/model-runner.ts';
import { UserError } from '../util/errors.ts';
import { type AdmissionLimits, admit, checkTextLength } from './admission.ts';
import { advanceRequest } from './advance.ts';
import { AsyncQueue } from './async-queue.ts';
import { StepPipeline } from './async-scheduling.ts';
import { EngineCounters } from './engine-counters.ts';
import { requestKvBudget } from './kv-budget.ts';
import { takeLogits } from './logits.ts';
import { takeOutput } from './output.ts';
import { DEFAULT_MAX_LOGPROBS } from './params.ts';
import { type KvCacheUsage, Scheduler, type SchedulerConfig } from './scheduler.ts';
import { liveSeqs, newRequest, type Request, Rng, Sequence, type TextStream } from './sequence.ts';
import { type SpeculativeConfig, Speculator } from './speculation.ts';
import { stepChunks } from './step-chunks.ts';
import { type StepContext, tokenHistory } from './step-context.ts';
import type { EncodeOptions, EngineApi, EngineStats, GenerateRequest, RequestOutput, SamplingParams } from './types.ts';

export interface EngineConfig {
  runner: StepRunner;
  tokenizer: TextTokenizer;
  /** A fresh incremental detokenizer for one sequence, primed with its prompt (special tokens skipped unless false). */
  newTextStream: (promptIds: readonly number[], skipSpecialTokens?: boolean) => TextStream;
  eosTokenIds: readonly number[];
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  enablePrefixCaching: boolean;
  scheduler: SchedulerConfig;
  /** Sampling defaults of the model (generation_config.json), under the request's own values. */
  samplingDefaults?: Partial<SamplingParams>;
  /** Encodes request text off the event loop (long texts in a worker); closed at shutdown. Default: inline. */
  promptEncoder?: PromptEncoder;
  /** Steps run only when `step()` is called (tests drive the engine step by step). */
  manual?: boolean;
  /** Frees the model's memory once the engine has stopped (the loader's backend); absent: the caller's to free. */
  release?: () => void;
  /** Structured output (compiles grammars in workers; closed at shutdown); absent: requests with one are refused. */
  grammar?: GrammarService;
  /** KV cache compression of long prompts; absent: none (requests with a `kvBudget` are refused). */
  kvCompression?: KvCompressionConfig;
  /** Speculative decoding; absent: one token per sequence and step. */
  speculative?: SpeculativeConfig;
  /**
   * Async scheduling (async-scheduling.ts) where the runner samples on its device; default on. Speculative decoding
   * turns it off.
   */
  asyncScheduling?: boolean;
  /** Most logprobs a request may ask for (--max-logprobs; -1: the whole vocabulary). Default 20, vLLM's. */
  maxLogprobs?: number;
  /** Seeds the seeds of requests that give none (vLLM's engine seed): the same seed, the same sampling. Default: random. */
  seed?: number;
}

/** A request whose prompt is already token ids: what `submit()` takes (`generate()` encodes text first). */
export type TokenRequest = Omit<GenerateRequest, 'prompt'> & { prompt: readonly number[] };

/** Where a request's outputs go: `generate()` uses a queue; tests may collect them directly. */
export interface OutputSink {
  push(out: RequestOutput): void;
  end(): void;
  fail(err: Error): void;
}

const NO_TEXT: TextStream = { push: () => '' };

/**
 * The engine: admits and queues requests, runs the step loop (schedule, one forward, sample, detokenize, stop
 * checks) and streams incremental outputs. Each step is synchronous; between steps the loop yields to the event
 * loop (setImmediate) so HTTP handlers, aborts and new submissions run. Prompts are tokenized before they are queued,
 * never inside a step (long ones in a worker thread, see BackgroundTokenizer); detokenization is incremental.
 */
export class Engine implements EngineApi {
  readonly scheduler: Scheduler;
  private readonly live = new Map<string, { req: Request; sink: OutputSink }>();
  private readonly ctx: StepContext;
  private readonly limits: AdmissionLimits;
  private readonly encoder: PromptEncoder;
  private readonly counters = new EngineCounters();
  private loop: Promise<void> | null = null;
  private closed = false;
  private nextId = 0;
  private arrivals = 0;
  /**
   * Requests ready to sample whose grammar masks are still owed by a grammar worker busy compiling another request's
   * schema: they sample at a later step, so a long compile holds up only the requests that need that worker.
   */
  private readonly deferred = new Set<Request>();
  private ranForward = false;
  private readonly speculator: Speculator | null;
  /** Async scheduling's step in flight; null when off. */
  private readonly pipeline: StepPipeline | null;
  /** Draws the seed of each request that gives none. */
  private readonly seeds: Rng;

  constructor(readonly config: EngineConfig) {
    this.scheduler = new Scheduler(config.scheduler, config);
    this.encoder = config.promptEncoder ?? inlineEncoder(config.tokenizer);
    this.speculator = config.speculative ? new Speculator(config.speculative, config.maxModelLen) : null;
    this.seeds = new Rng(config.seed ?? Math.random() * 2 ** 32, 0);
    this.limits = {
      vocabSize: config.runner.vocabSize,
      maxModelLen: config.maxModelLen,
      numBlocks: config.numBlocks,
      blockSize: config.blockSize,
      maxNumSeqs: config.scheduler.maxNumSeqs,
      maxNumBatchedTokens: config.scheduler.maxNumBatchedTokens,
      samplingDefaults: config.samplingDefaults,
      maxLogprobs: config.maxLogprobs === -1 ? config.runner.vocabSize : (config.maxLogprobs ?? DEFAULT_MAX_LOGPROBS),
    };
    this.ctx = {
      scheduler: this.scheduler,
      tokenizer: config.tokenizer,
      eos: new Set(config.eosTokenIds),
      maxModelLen: config.maxModelLen,
      newSequence: (r, tokenIds, stream) => {
        const detok = r.params.useBeamSearch ? NO_TEXT : config.newTextStream(r.promptIds, r.skipSpecialTokens);
        const seq = new Sequence(tokenIds, r.promptIds.length, detok, new Rng(r.seed, stream));
        seq.kvBudget = r.kvBudget;
        seq.cacheSalt = r.cacheSalt;
        if (r.grammarKey !== undefined) {
          seq.grammar = config.grammar!.open(r.grammarKey, tokenHistory(this.ctx, r, seq).stopIds);
        }
        return seq;
      },
      countToken: (r) => {
        this.counters.generationTokens++;
        r.metrics.generationTokens++;
        r.metrics.firstTokenTime ??= Date.now();
      },
      countDraft: (proposed, accepted) => {
        this.counters.draftTokens += proposed;
        this.counters.acceptedDraftTokens += accepted;
      },
    };
    const pipelined = config.asyncScheduling !== false && !this.speculator;
    this.pipeline = pipelined
      ? new StepPipeline({
          ctx: this.ctx,
          runner: config.runner,
          advance: (requests) => this.advance(requests),
          launched: (tokens) => this.counters.stepLaunched(tokens),
        })
      : null;
  }

  /** The KV cache's bookkeeping, read-only: the scheduler owns the blocks. */
  get blocks(): KvCacheUsage {
    return this.scheduler.blocks;
  }

  /** Largest number of tokens the cache holds at once. */
  get maxConcurrentTokens(): number {
    return this.config.numBlocks * this.config.blockSize;
  }

  async encode(text: string, opts?: EncodeOptions): Promise<number[]> {
    if (!opts?.anyLength) checkTextLength(text.length, this.config.maxModelLen, this.config.tokenizer.maxCharsPerToken);
    return this.encoder.encode(text, opts);
  }

  async *generate(request: GenerateRequest): AsyncGenerator<RequestOutput> {
    const queue = new AsyncQueue<RequestOutput>();
    const prompt = typeof request.prompt === 'string' ? await this.encode(request.prompt) : request.prompt;
    const grammarKey = request.grammar ? await this.compileGrammar(request) : undefined;
    const r = this.submit({ ...request, prompt }, queue, grammarKey);
    try {
      yield* queue;
    } finally {
      if (!r.finished) this.abort(r.id);
    }
  }

  /** Admits (see admission.ts) and queues a request; outputs go to `sink`. Throws UserError when it cannot run. */
  submit(request: TokenRequest, sink: OutputSink, grammarKey?: string): Request {
    if (this.closed) throw new UserError('the engine is shutting down');
    if (request.grammar && grammarKey === undefined) throw new Error('submit: compile the grammar first (generate())');
    const id = request.id ?? `req-${this.nextId++}`;
    if (this.live.has(id)) throw new UserError(`request id "${id}" is already in use`);
    const { promptIds, params } = admit(request.prompt, request.params ?? {}, this.limits);
    const kvBudget = requestKvBudget(this.config.kvCompression, request.kvBudget, promptIds.length);
    const seed = params.seed ?? this.seeds.nextU32();
    const r = newRequest({
      id,
      params,
      promptIds,
      priority: request.priority ?? 0,
      arrivalSeq: this.arrivals++,
      seed,
      grammarKey,
      skipSpecialTokens: request.skipSpecialTokens,
      kvBudget,
      cacheSalt: request.cacheSalt,
    });
    r.seqs.push(this.ctx.newSequence(r, [...promptIds], 0));
    this.counters.promptTokens += promptIds.length;
    this.live.set(id, { req: r, sink });
    this.scheduler.add(r);
    this.kick();
    return r;
  }

  abort(requestId: string): void {
    const entry = this.live.get(requestId);
    if (!entry) return;
    for (const s of entry.req.seqs) if (!s.finished) s.finishReason = 'abort';
    this.finishRequest(entry.req, entry.sink);
  }

  stats(): EngineStats {
    return this.counters.stats(this.scheduler);
  }

  async shutdown(force = false): Promise<void> {
    this.closed = true;
    if (force) for (const id of [...this.live.keys()]) this.abort(id);
    while (this.loop) await this.loop;
    const closed = await Promise.allSettled([this.encoder.close(), this.config.grammar?.close()]);
    this.config.release?.();
    for (const c of closed) if (c.status === 'rejected') throw c.reason;
  }

  /** Compiles a request's grammar in a worker (cached by spec); the request queues once it is ready. */
  private async compileGrammar(request: GenerateRequest): Promise<string> {
    if (!this.config.grammar) throw new UserError('this model cannot do structured output (it has no tokenizer.json)');
    if (request.params?.useBeamSearch) throw new UserError('structured output does not combine with beam search');
    return this.config.grammar.compile(request.grammar!);
  }

  /**
   * One iteration: schedule, run the model once, sample, stream. With a step in flight (async scheduling), launches
   * the step after it first where it can. Returns false when there was nothing to do.
   */
  step(): boolean {
    // A grammar worker that failed took its matchers with it: their requests fail, the others go on.
    if (this.config.grammar?.failedMatchers)
      this.failWhere((r) => r.seqs.map((s) => s.grammar?.failure).find((f) => f));
    let drained = false;
    if (this.pipeline?.busy) {
      if (this.pipeline.followUp(this.deferred.size === 0)) {
        this.ranForward = true;
        return true;
      }
      drained = true;
    }
    if (!this.scheduler.hasWork) return drained;
    const drafts = this.speculator?.propose(this.scheduler.running);
    const step = this.scheduler.schedule(drafts);
    this.ranForward = step.seqs.length > 0;
    if (step.seqs.length === 0 && this.deferred.size === 0) {
      throw new Error('scheduler made no progress with requests queued');
    }
    if (step.seqs.length > 0) {
      const logits = this.config.runner.execute(stepChunks(step), step.copies);
      let tokens = 0;
      for (const { seq, start, numTokens } of step.seqs) {
        tokens += numTokens;
        this.counters.promptTokensComputed += Math.max(0, Math.min(numTokens, seq.promptLen - start));
      }
      this.counters.stepLaunched(tokens);
      this.scheduler.update(step);
      if (this.deferred.size === 0 && this.pipeline?.start(step, logits)) return true;
      takeLogits(this.ctx, this.config.runner.vocabSize, step.seqs, logits);
    }
    this.advance(step.seqs.map((s) => s.request));
    // The workers advance the matchers and compute their next masks while the next forward runs.
    this.config.grammar?.flush();
    return true;
  }

  /**
   * Takes the next tokens of `requests` and of the deferred ones whose sequences all have one ready, streams them and
   * ends finished ones.
   */
  private advance(requests: readonly Request[]): void {
    const touched = new Set([...this.deferred, ...requests]);
    this.deferred.clear();
    for (const r of touched) {
      if (r.finished) continue;
      if (liveSeqs(r).every((s) => s.hasPending) && !advanceRequest(this.ctx, r)) this.deferred.add(r);
      const entry = this.live.get(r.id)!;
      if (r.seqs.every((s) => s.finished) || r.finished) this.finishRequest(r, entry.sink);
      else this.emit(r, entry.sink);
    }
  }

  private kick(): void {
    if (this.config.manual || this.loop) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      if (this.scheduler.hasWork || this.pipeline?.busy) this.kick();
    });
  }

  private async runLoop(): Promise<void> {
    while (this.scheduler.hasWork || this.pipeline?.busy) {
      // Only deferred requests left: wait for the grammar worker without spinning.
      if (this.ranForward || this.deferred.size === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      else await new Promise<void>((resolve) => setTimeout(resolve, 1));
      try {
        this.step();
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.failWhere(() => error);
      }
    }
  }

  /** Fails each live request `why` gives a reason for, and only those (grammar failures: their own requests). */
  private failWhere(why: (req: Request) => Error | null | undefined): void {
    for (const { req, sink } of [...this.live.values()]) {
      const err = why(req);
      if (!err) continue;
      req.finished = true;
      this.scheduler.remove(req);
      for (const s of req.seqs) s.grammar?.release();
      this.live.delete(req.id);
      this.deferred.delete(req);
      sink.fail(err);
    }
  }

  private finishRequest(r: Request, sink: OutputSink): void {
    r.finished = true;
    r.metrics.finishedTime = Date.now();
    this.scheduler.remove(r);
    for (const s of r.seqs) s.grammar?.release();
    this.live.delete(r.id);
    this.emit(r, sink);
    sink.end();
  }

  private emit(r: Request, sink: OutputSink): void {
    const out = takeOutput(r, this.config.tokenizer);
    if (out) sink.push(out);
  }
}
