import type { SamplingRow } from '../backend/backend.ts';
import type { TextTokenizer } from '../loader/tokenizer.ts';
import type { StepLogits, StepRunner } from '../runner/model-runner.ts';
import { UserError } from '../util/errors.ts';
import { AsyncQueue } from './async-queue.ts';
import { resolveSamplingParams } from './params.ts';
import { applyLogitsProcessors, isGreedy, logSoftmax, sampleToken, topEntries } from './sampling.ts';
import { type KvCacheUsage, type ScheduledSeq, Scheduler, type SchedulerConfig } from './scheduler.ts';
import { liveSeqs, type Request, Rng, Sequence, type TextStream } from './sequence.ts';
import { findStop, heldBackLength } from './stop-strings.ts';
import type {
  CompletionDelta,
  EngineApi,
  EngineStats,
  FinishReason,
  GenerateRequest,
  RequestOutput,
  SamplingParams,
  TokenLogprob,
} from './types.ts';

export interface EngineConfig {
  runner: StepRunner;
  tokenizer: TextTokenizer;
  /** A fresh incremental detokenizer for one sequence, primed with its prompt. */
  newTextStream: (promptIds: readonly number[]) => TextStream;
  eosTokenIds: readonly number[];
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  enablePrefixCaching: boolean;
  scheduler: SchedulerConfig;
  /** Sampling defaults of the model (generation_config.json), under the request's own values. */
  samplingDefaults?: Partial<SamplingParams>;
  /** Encodes text prompts for `generate()` off the event loop (long ones in a worker); `close()` at shutdown. */
  promptEncoder?: { encode(text: string): Promise<number[]>; close(): Promise<void> };
  /** Steps run only when `step()` is called (tests drive the engine step by step). */
  manual?: boolean;
}

/** Where a request's outputs go: `generate()` uses a queue; tests may collect them directly. */
export interface OutputSink {
  push(out: RequestOutput): void;
  end(): void;
  fail(err: Error): void;
}

const NO_TEXT: TextStream = { push: () => '' };

/**
 * The engine: tokenizes and queues requests, runs the step loop (schedule, one forward, sample, detokenize, stop
 * checks) and streams incremental outputs. Each step is synchronous; between steps the loop yields to the event
 * loop (setImmediate) so HTTP handlers, aborts and new submissions run. Prompts are tokenized before they are queued,
 * never inside a step (long ones in a worker thread, see BackgroundTokenizer); detokenization is incremental.
 */
export class Engine implements EngineApi {
  readonly scheduler: Scheduler;
  private readonly live = new Map<string, { req: Request; sink: OutputSink }>();
  private readonly eos: Set<number>;
  private counters = { promptTokens: 0, promptTokensComputed: 0, generationTokens: 0, steps: 0 };
  private loop: Promise<void> | null = null;
  private closed = false;
  private nextId = 0;
  private arrivals = 0;

  constructor(readonly config: EngineConfig) {
    this.scheduler = new Scheduler(config.scheduler, config);
    this.eos = new Set(config.eosTokenIds);
  }

  /** The KV cache's bookkeeping, read-only: the scheduler owns the blocks. */
  get blocks(): KvCacheUsage {
    return this.scheduler.blocks;
  }

  /** Largest number of tokens the cache holds at once. */
  get maxConcurrentTokens(): number {
    return this.config.numBlocks * this.config.blockSize;
  }

  async *generate(request: GenerateRequest): AsyncGenerator<RequestOutput> {
    const queue = new AsyncQueue<RequestOutput>();
    const encoder = this.config.promptEncoder;
    const prompt =
      typeof request.prompt === 'string' && encoder ? await encoder.encode(request.prompt) : request.prompt;
    const r = this.submit({ ...request, prompt }, queue);
    try {
      yield* queue;
    } finally {
      if (!r.finished) this.abort(r.id);
    }
  }

  /**
   * Validates, tokenizes (inline: `generate()` uses the prompt encoder first) and queues a request; outputs go to
   * `sink`. Throws UserError when it cannot run.
   */
  submit(request: GenerateRequest, sink: OutputSink): Request {
    if (this.closed) throw new UserError('the engine is shutting down');
    const id = request.id ?? `req-${this.nextId++}`;
    if (this.live.has(id)) throw new UserError(`request id "${id}" is already in use`);
    const resolved = resolveSamplingParams(request.params ?? {}, this.config.samplingDefaults);
    const promptIds =
      typeof request.prompt === 'string' ? this.config.tokenizer.encode(request.prompt) : [...request.prompt];
    if (promptIds.length === 0) throw new UserError('the prompt is empty (expected at least one token)');
    const vocab = this.config.runner.vocabSize;
    const bad = promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== undefined) throw new UserError(`prompt token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
    const outside = (ids: readonly number[]) => ids.find((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
    // Keys as written ("02" would be token 2 twice over once min_tokens adds its own entry).
    const oddKey = Object.keys(resolved.logitBias).find((k) => String(Number(k)) !== k);
    if (oddKey !== undefined) {
      throw new UserError(`logit_bias key "${oddKey}" is not a token id (expected 0..${vocab - 1})`);
    }
    const badBias = outside(Object.keys(resolved.logitBias).map(Number));
    if (badBias !== undefined) {
      throw new UserError(`logit_bias token id ${badBias} is outside the vocabulary (0..${vocab - 1})`);
    }
    const badStop = outside(resolved.stopTokenIds);
    if (badStop !== undefined) {
      throw new UserError(`stop_token_ids: ${badStop} is outside the vocabulary (0..${vocab - 1})`);
    }
    const params = {
      ...resolved,
      maxTokens: resolved.maxTokens ?? this.defaultMaxTokens(promptIds.length, resolved.bestOf),
    };
    this.checkFits(promptIds.length, params);

    const seed = params.seed ?? Math.floor(Math.random() * 2 ** 32);
    const r: Request = {
      id,
      params,
      promptIds,
      priority: request.priority ?? 0,
      arrivalSeq: this.arrivals++,
      seed,
      seqs: [],
      beamDone: [],
      metrics: {
        arrivalTime: Date.now(),
        firstScheduledTime: null,
        firstTokenTime: null,
        finishedTime: null,
        promptTokens: promptIds.length,
        cachedPromptTokens: 0,
        generationTokens: 0,
      },
      promptLogprobs: params.promptLogprobs === null ? null : [null],
      promptLogprobsSent: false,
      finished: false,
    };
    r.seqs.push(this.newSequence(r, [...promptIds], 0));
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
    return {
      running: this.scheduler.running.length,
      waiting: this.scheduler.waiting.length,
      totalBlocks: this.blocks.numBlocks,
      freeBlocks: this.blocks.numFree,
      blockSize: this.blocks.blockSize,
      preemptions: this.scheduler.preemptions,
      promptTokens: this.counters.promptTokens,
      promptTokensComputed: this.counters.promptTokensComputed,
      generationTokens: this.counters.generationTokens,
      prefixCacheHits: this.blocks.prefixHits,
      prefixCacheQueries: this.blocks.prefixQueries,
      steps: this.counters.steps,
    };
  }

  async shutdown(force = false): Promise<void> {
    this.closed = true;
    if (force) for (const id of [...this.live.keys()]) this.abort(id);
    while (this.loop) await this.loop;
    await this.config.promptEncoder?.close();
  }

  /** One iteration: schedule, run the model once, sample, stream. Returns false when there was nothing to do. */
  step(): boolean {
    if (!this.scheduler.hasWork) return false;
    const step = this.scheduler.schedule();
    const scheduled = step.seqs;
    if (scheduled.length === 0) throw new Error('scheduler made no progress with requests queued');
    const chunks = scheduled.map(({ seq, start, numTokens, logits }) => ({
      tokenIds: seq.tokenIds.slice(start, start + numTokens),
      startPos: start,
      blockTable: seq.blockTable,
      logits,
    }));
    const logits = this.config.runner.execute(chunks, step.copies);
    this.counters.steps++;
    this.scheduler.update(step);
    this.takeLogits(scheduled, logits);

    const touched = new Set(scheduled.map((s) => s.request));
    for (const r of touched) {
      if (r.finished) continue;
      if (liveSeqs(r).every((s) => s.hasPending)) this.sampleRequest(r);
      const entry = this.live.get(r.id)!;
      if (r.seqs.every((s) => s.finished) || r.finished) this.finishRequest(r, entry.sink);
      else this.emit(r, entry.sink);
    }
    return true;
  }

  private kick(): void {
    if (this.config.manual || this.loop) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      if (this.scheduler.hasWork) this.kick();
    });
  }

  private async runLoop(): Promise<void> {
    while (this.scheduler.hasWork) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        this.step();
      } catch (err) {
        this.failAll(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private failAll(err: Error): void {
    for (const { req, sink } of [...this.live.values()]) {
      req.finished = true;
      this.scheduler.remove(req);
      this.live.delete(req.id);
      sink.fail(err);
    }
  }

  private defaultMaxTokens(promptLen: number, width: number): number {
    const perSeq = Math.floor(this.config.numBlocks / width) * this.config.blockSize;
    return Math.max(1, Math.min(this.config.maxModelLen, perSeq) - promptLen);
  }

  /** Refuses a request that could never run: over the model length, or more blocks than the whole cache. */
  private checkFits(promptLen: number, p: SamplingParams): void {
    const total = promptLen + p.maxTokens;
    if (total > this.config.maxModelLen) {
      throw new UserError(
        `prompt (${promptLen} tokens) + max_tokens (${p.maxTokens}) = ${total} tokens exceeds the model's maximum length of ${this.config.maxModelLen}`,
      );
    }
    const { maxNumSeqs, maxNumBatchedTokens } = this.config.scheduler;
    if (p.bestOf > Math.min(maxNumSeqs, maxNumBatchedTokens)) {
      throw new UserError(
        `best_of / beam width ${p.bestOf} exceeds what one step can run (max-num-seqs ${maxNumSeqs}, max-num-batched-tokens ${maxNumBatchedTokens})`,
      );
    }
    // Each of the bestOf sequences may have to be recomputed on its own after a preemption.
    const need = p.bestOf * this.blocks.blocksFor(total);
    if (need > this.config.numBlocks) {
      throw new UserError(
        `prompt (${promptLen} tokens) + max_tokens (${p.maxTokens}) needs ${need} KV blocks${p.bestOf > 1 ? ` for ${p.bestOf} sequences` : ''}, but the whole KV cache has ${this.config.numBlocks} blocks of ${this.config.blockSize} tokens (raise --kv-cache-memory)`,
      );
    }
  }

  private newSequence(r: Request, tokenIds: number[], stream: number): Sequence {
    const detok = r.params.useBeamSearch ? NO_TEXT : this.config.newTextStream(r.promptIds);
    return new Sequence(tokenIds, r.promptIds.length, detok, new Rng(r.seed, stream));
  }

  /**
   * Marks the step's tokens computed, records prompt logprobs and readies the next token of every sequence whose
   * tokens are all computed: sampled on the device when the backend can and the request needs nothing else from the
   * logits (vLLM's fast path), otherwise its logit row comes to the host for the CPU sampler. Only the rows that are
   * needed leave the device.
   */
  private takeLogits(scheduled: readonly ScheduledSeq[], out: StepLogits): void {
    const vocab = this.config.runner.vocabSize;
    const hostIndex = new Map<number, number>();
    const toHost = (row: number) => {
      if (!hostIndex.has(row)) hostIndex.set(row, hostIndex.size);
    };
    const promptRows: { r: Request; start: number; count: number; row: number }[] = [];
    const hostSampled: { seq: Sequence; row: number }[] = [];
    const deviceRows: SamplingRow[] = [];
    const deviceSeqs: Sequence[] = [];
    let row = 0;
    for (const { request: r, seq, start, numTokens, logits: mode } of scheduled) {
      this.counters.promptTokensComputed += Math.max(0, Math.min(numTokens, seq.promptLen - start));
      if (mode === 'all' && seq === r.seqs[0] && r.promptLogprobs) {
        // Row j predicts prompt token start + j + 1, while there is one.
        const count = Math.max(0, Math.min(numTokens, r.promptIds.length - 1 - start));
        for (let j = 0; j < count; j++) toHost(row + j);
        promptRows.push({ r, start, count, row });
      }
      const rows = mode === 'all' ? numTokens : mode === 'last' ? 1 : 0;
      if (rows > 0 && seq.numComputed === seq.tokenIds.length) {
        const last = row + rows - 1;
        if (out.sample && this.samplesOnDevice(r.params)) {
          deviceRows.push(this.samplingRow(r, seq, last));
          deviceSeqs.push(seq);
        } else {
          toHost(last);
          hostSampled.push({ seq, row: last });
        }
      }
      row += rows;
    }
    const host = hostIndex.size > 0 ? out.toHost([...hostIndex.keys()]) : new Float32Array(0);
    const hostRow = (logitRow: number) => {
      const i = hostIndex.get(logitRow)!;
      return host.subarray(i * vocab, (i + 1) * vocab);
    };
    for (const { r, start, count, row: first } of promptRows) {
      for (let j = 0; j < count; j++) {
        const next = start + j + 1;
        const lp = logSoftmax(hostRow(first + j));
        r.promptLogprobs![next] = this.tokenLogprob(
          r.promptIds[next]!,
          lp,
          r.params.promptLogprobs!,
          r.promptIds,
          next,
        );
      }
    }
    for (const { seq, row: logitRow } of hostSampled) seq.pendingLogits = hostRow(logitRow).slice();
    if (deviceRows.length > 0) {
      const ids = out.sample!(deviceRows);
      deviceSeqs.forEach((seq, i) => {
        seq.pendingToken = ids[i]!;
      });
    }
  }

  /** One plain sample per step with no logprobs: the device sampler implements everything else of SamplingParams. */
  private samplesOnDevice(p: SamplingParams): boolean {
    return !p.useBeamSearch && p.bestOf === 1 && p.logprobs === null;
  }

  /**
   * The device sampler's description of a sequence's next draw: the same processors as `applyLogitsProcessors`
   * (min_tokens as a -inf bias on the stop ids), keyed by the request's seed and counted by the output length.
   */
  private samplingRow(r: Request, seq: Sequence, logitRow: number): SamplingRow {
    const p = r.params;
    let logitBias: Record<number, number> | undefined = Object.keys(p.logitBias).length > 0 ? p.logitBias : undefined;
    if (seq.outputLen < p.minTokens) {
      logitBias = { ...p.logitBias };
      for (const id of this.history(r, seq).stopIds) logitBias[id] = Number.NEGATIVE_INFINITY;
    }
    const row: SamplingRow = {
      logitRow,
      temperature: isGreedy(p) ? 0 : p.temperature,
      topK: p.topK,
      topP: p.topP,
      minP: p.minP,
      repetitionPenalty: p.repetitionPenalty,
      presencePenalty: p.presencePenalty,
      frequencyPenalty: p.frequencyPenalty,
      logitBias,
      seed: r.seed,
      step: seq.outputLen,
    };
    if (p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0) {
      // Repetition covers prompt and output tokens; presence and frequency count output occurrences only.
      const counts = new Map<number, number>();
      if (p.repetitionPenalty !== 1) for (const id of r.promptIds) counts.set(id, 0);
      for (const id of seq.outputIds) counts.set(id, (counts.get(id) ?? 0) + 1);
      row.seenTokens = Int32Array.from(counts.keys());
      row.seenCounts = Int32Array.from(counts.values());
    }
    return row;
  }

  private sampleRequest(r: Request): void {
    const p = r.params;
    if (p.useBeamSearch) {
      this.beamStep(r);
      return;
    }
    const first = r.seqs[0]!;
    if (r.seqs.length === 1 && p.bestOf > 1 && first.outputLen === 0) {
      // The prompt is computed once; the bestOf samples fork from it and share its blocks.
      for (let i = 1; i < p.bestOf; i++) {
        const child = this.newSequence(r, [...first.tokenIds], i);
        this.scheduler.fork(first, child);
        child.pendingLogits = first.pendingLogits;
        r.seqs.push(child);
      }
    }
    const needLogprobs = p.logprobs !== null || p.bestOf > p.n;
    for (const seq of liveSeqs(r)) {
      if (seq.pendingToken !== null) {
        const token = seq.pendingToken;
        seq.pendingToken = null;
        this.appendToken(r, seq, token);
        continue;
      }
      const raw = seq.pendingLogits!;
      seq.pendingLogits = null;
      const logits = Float32Array.from(raw);
      applyLogitsProcessors(logits, p, this.history(r, seq));
      const token = sampleToken(logits, p, seq.rng);
      if (needLogprobs) {
        const lp = logSoftmax(raw);
        seq.cumLogprob += lp[token]!;
        if (p.logprobs !== null) {
          seq.logprobs.push(this.tokenLogprob(token, lp, p.logprobs, seq.tokenIds, seq.tokenIds.length));
        }
      }
      this.appendToken(r, seq, token);
    }
  }

  private history(r: Request, seq: Sequence) {
    const p = r.params;
    const stopIds = p.ignoreEos ? p.stopTokenIds : [...this.eos, ...p.stopTokenIds];
    return { promptIds: r.promptIds, outputIds: seq.outputIds, stopIds };
  }

  private appendToken(r: Request, seq: Sequence, token: number): void {
    const p = r.params;
    seq.tokenIds.push(token);
    this.counters.generationTokens++;
    r.metrics.generationTokens++;
    r.metrics.firstTokenTime ??= Date.now();
    if (!p.ignoreEos && this.eos.has(token)) this.finishSeq(seq, 'stop', null);
    else if (p.stopTokenIds.includes(token)) this.finishSeq(seq, 'stop', token);
    else {
      const before = seq.text.length;
      seq.text += seq.detok.push(token);
      const hit = findStop(seq.text, p.stop, before);
      if (hit) {
        seq.text = seq.text.slice(0, hit.index);
        seq.finishReason = 'stop';
        seq.stopReason = hit.stop;
        this.scheduler.free(seq);
      }
    }
    if (!seq.finished && (seq.outputLen >= p.maxTokens || seq.tokenIds.length >= this.config.maxModelLen)) {
      this.finishSeq(seq, 'length', null);
    }
  }

  private finishSeq(seq: Sequence, reason: FinishReason, stopReason: string | number | null): void {
    seq.finishReason = reason;
    seq.stopReason = stopReason;
    seq.text += seq.detok.flush?.() ?? '';
    this.scheduler.free(seq);
  }

  /**
   * One beam-search step over all live beams: each beam's 2 x width best next tokens are scored by cumulative
   * logprob; the best `width` continue (forking their parent, which shares its blocks), candidates that end generation
   * within the top `width` become finished hypotheses. Stops once `width` hypotheses are finished (HF's
   * early_stopping=True) or at max_tokens.
   */
  private beamStep(r: Request): void {
    const p = r.params;
    const width = p.bestOf;
    const beams = liveSeqs(r);
    const cands: { parent: Sequence; token: number; lp: Float32Array; score: number }[] = [];
    for (const b of beams) {
      const logits = Float32Array.from(b.pendingLogits!);
      b.pendingLogits = null;
      applyLogitsProcessors(logits, p, this.history(r, b));
      const lp = logSoftmax(logits);
      for (const { id, value } of topEntries(lp, 2 * width)) {
        cands.push({ parent: b, token: id, lp, score: b.cumLogprob + value });
      }
    }
    cands.sort((a, b) => b.score - a.score);
    const next: typeof cands = [];
    for (let rank = 0; rank < cands.length && next.length < width; rank++) {
      const c = cands[rank]!;
      const ends = (!p.ignoreEos && this.eos.has(c.token)) || p.stopTokenIds.includes(c.token);
      if (!ends) next.push(c);
      else if (rank < width) {
        const hyp = this.beamChild(r, c.parent, false);
        this.extendBeam(hyp, c.token, c.lp, c.score, p);
        hyp.finishReason = 'stop';
        hyp.stopReason = this.eos.has(c.token) ? null : c.token;
        r.beamDone.push(hyp);
      }
    }
    // Fork every extra child before any parent moves on, then drop the parents nobody continues.
    const firstUse = new Map<Sequence, (typeof cands)[number]>();
    const forks: [Sequence, (typeof cands)[number]][] = [];
    for (const c of next) {
      if (!firstUse.has(c.parent)) firstUse.set(c.parent, c);
      else forks.push([this.beamChild(r, c.parent, true), c]);
    }
    for (const b of beams) if (!firstUse.has(b)) this.scheduler.free(b);
    r.seqs = [...firstUse.keys(), ...forks.map(([s]) => s)];
    for (const [seq, c] of [...firstUse, ...forks]) {
      this.extendBeam(seq, c.token, c.lp, c.score, p);
      this.counters.generationTokens++;
      r.metrics.generationTokens++;
    }
    r.metrics.firstTokenTime ??= Date.now();
    const atLength = r.seqs.some((s) => s.outputLen >= p.maxTokens || s.tokenIds.length >= this.config.maxModelLen);
    if (atLength) {
      for (const s of r.seqs) {
        s.finishReason = 'length';
        r.beamDone.push(s);
      }
    }
    if (atLength || r.beamDone.length >= width || r.seqs.length === 0) {
      for (const s of r.seqs) s.finishReason ??= 'length';
      r.finished = true;
    }
  }

  private beamChild(r: Request, parent: Sequence, shareBlocks: boolean): Sequence {
    const child = this.newSequence(r, [...parent.tokenIds], 0);
    child.cumLogprob = parent.cumLogprob;
    child.logprobs = [...parent.logprobs];
    if (shareBlocks) this.scheduler.fork(parent, child);
    return child;
  }

  private extendBeam(seq: Sequence, token: number, lp: Float32Array, score: number, p: SamplingParams): void {
    if (p.logprobs !== null) {
      seq.logprobs.push(this.tokenLogprob(token, lp, p.logprobs, seq.tokenIds, seq.tokenIds.length));
    }
    seq.tokenIds.push(token);
    seq.cumLogprob = score;
  }

  /**
   * A logprob entry for the token at `ids[at]` (or a candidate there). Token text is decoded after the few tokens
   * before it, as vLLM does, so a leading space that a tokenizer drops at the start of a decode is kept.
   */
  private tokenLogprob(
    tokenId: number,
    lp: Float32Array,
    top: number,
    ids: readonly number[],
    at: number,
  ): TokenLogprob {
    const tok = this.config.tokenizer;
    const context = ids.slice(Math.max(0, at - 3), at);
    const prefix = tok.decode(context);
    const text = (id: number) => {
      const full = tok.decode([...context, id]);
      return full.startsWith(prefix) ? full.slice(prefix.length) : tok.decode([id]);
    };
    return {
      tokenId,
      token: text(tokenId),
      logprob: lp[tokenId]!,
      top: topEntries(lp, top).map(({ id, value }) => ({ tokenId: id, token: text(id), logprob: value })),
    };
  }

  private finishRequest(r: Request, sink: OutputSink): void {
    r.finished = true;
    r.metrics.finishedTime = Date.now();
    this.scheduler.remove(r);
    this.live.delete(r.id);
    this.emit(r, sink);
    sink.end();
  }

  /** Streams what is new. best_of > n and beam search rank their candidates, so they report once, at the end. */
  private emit(r: Request, sink: OutputSink): void {
    const p = r.params;
    const ranked = p.useBeamSearch || p.bestOf > p.n;
    if (ranked && !r.finished) return;
    const outputs: CompletionDelta[] = [];
    if (ranked) {
      for (const [index, seq] of this.best(r).entries()) {
        const ids = seq.outputIds;
        const text = p.useBeamSearch ? this.config.tokenizer.decode(this.textIds(seq, ids)) : seq.text;
        outputs.push({
          index,
          text,
          tokenIds: ids,
          logprobs: p.logprobs === null ? null : seq.logprobs,
          finishReason: seq.finishReason,
          stopReason: seq.stopReason,
        });
      }
    } else {
      r.seqs.forEach((seq, index) => {
        const end = seq.finished ? seq.text.length : seq.text.length - heldBackLength(seq.text, p.stop);
        const text = seq.text.slice(seq.emittedChars, Math.max(seq.emittedChars, end));
        const tokenIds = seq.tokenIds.slice(seq.promptLen + seq.emittedTokens);
        const newFinish = seq.finished && !seq.finishReported;
        if (!text && tokenIds.length === 0 && !newFinish) return;
        outputs.push({
          index,
          text,
          tokenIds,
          logprobs: p.logprobs === null ? null : seq.logprobs.slice(seq.emittedLogprobs),
          finishReason: seq.finishReason,
          stopReason: seq.stopReason,
        });
        seq.emittedChars += text.length;
        seq.emittedTokens += tokenIds.length;
        seq.emittedLogprobs = seq.logprobs.length;
        seq.finishReported = seq.finished;
      });
    }
    const sendPromptLogprobs = r.promptLogprobs !== null && !r.promptLogprobsSent && outputs.length > 0;
    if (sendPromptLogprobs) r.promptLogprobsSent = true;
    if (outputs.length === 0 && !r.finished) return;
    sink.push({
      requestId: r.id,
      promptTokenIds: r.promptIds,
      promptLogprobs: sendPromptLogprobs ? r.promptLogprobs : null,
      outputs,
      finished: r.finished,
      metrics: { ...r.metrics },
    });
  }

  /** The n completions to return: beam hypotheses by length-penalized score, best_of samples by cumulative logprob. */
  private best(r: Request): Sequence[] {
    const p = r.params;
    const score = (s: Sequence) =>
      p.useBeamSearch ? s.cumLogprob / Math.max(1, s.outputLen) ** p.lengthPenalty : s.cumLogprob;
    const pool = p.useBeamSearch ? r.beamDone : r.seqs;
    return [...pool].sort((a, b) => score(b) - score(a)).slice(0, p.n);
  }

  /** Output ids that make up the text: a final EOS / stop token is not text. */
  private textIds(seq: Sequence, ids: number[]): number[] {
    return seq.finishReason === 'stop' && typeof seq.stopReason !== 'string' ? ids.slice(0, -1) : ids;
  }
}
