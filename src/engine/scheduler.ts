import { type KvCompressionPlan, snapKvWindow } from '../primitives/kv-compression.ts';
import { BlockManager } from './block-manager.ts';
import { liveSeqs, type Proposal, type Request, type Sequence } from './sequence.ts';

export interface SchedulerConfig {
  /** Token budget of one step (prefill chunks + decodes). */
  maxNumBatchedTokens: number;
  /** At most this many sequences in one step. */
  maxNumSeqs: number;
  /** 'fcfs' (arrival order) or 'priority' (lower `priority` first, then arrival). */
  policy: 'fcfs' | 'priority';
}

/** The paged KV cache the scheduler hands out. */
export interface KvCacheConfig {
  numBlocks: number;
  blockSize: number;
  enablePrefixCaching: boolean;
}

/** What others may read of the KV cache's bookkeeping (only the scheduler changes it). */
export type KvCacheUsage = Pick<
  BlockManager,
  'numBlocks' | 'blockSize' | 'numFree' | 'numUsed' | 'refCountOf' | 'blocksFor' | 'prefixHits' | 'prefixQueries'
>;

/** One sequence's share of a step. */
export interface ScheduledSeq {
  request: Request;
  seq: Sequence;
  /** Tokens already computed when the step starts (the chunk's first position). */
  start: number;
  /** Entries the sequence holds in the cache when the step starts (`start` unless compression dropped some). */
  cached: number;
  /** Tokens computed this step, from `start`, draft tokens included. */
  numTokens: number;
  logits: 'last' | 'all' | 'none';
  /** The chunk ends the prompt, whose KV the step then compresses. */
  compress?: Omit<KvCompressionPlan, 'seq'>;
  /** Draft tokens computed after the sequence's own (speculative decoding; every row gets logits), or null. */
  draft: Proposal | null;
}

/** One step's work: the sequences' chunks and the block copies (copy-on-write) to perform before them. */
export interface ScheduledStep {
  seqs: ScheduledSeq[];
  copies: [number, number][];
}

/**
 * Iteration-level continuous batching. Every step: running requests that only decode come first, then chunks of
 * prompts being prefilled, then new requests, within the token budget and the sequence cap. A request is scheduled
 * only once the blocks for its share of the step are allocated, so a step never runs out half-way. When blocks run
 * out, the most recently admitted (or lowest-priority) running request is preempted by recompute: its blocks are
 * freed and it goes back to the head of the queue. Requests too big for the whole cache are refused earlier (engine).
 *
 * The scheduler is the only owner of KV blocks, as nano-vllm's: it allocates them for each step, records what the
 * step computed (registering full blocks for prefix caching), shares them with forked sequences and frees them.
 *
 * KV compression (a request's `kvBudget`): a sequence's prompt chunks stop at the prompt's end and leave its last
 * chunk the whole observation window when they can; that chunk's step compacts the cache, then its blocks past the
 * budget are freed. A preempted sequence is recomputed the same way (prefill, compression, then its output tokens).
 */
export class Scheduler {
  readonly waiting: Request[] = [];
  /** In admission order. */
  readonly running: Request[] = [];
  preemptions = 0;
  /** Blocks KV compression has given back. */
  kvBlocksSaved = 0;
  private readonly cache: BlockManager;

  constructor(
    readonly config: SchedulerConfig,
    kv: KvCacheConfig,
  ) {
    this.cache = new BlockManager(kv.numBlocks, kv.blockSize, kv.enablePrefixCaching);
  }

  get blocks(): KvCacheUsage {
    return this.cache;
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  add(r: Request): void {
    this.enqueue(r, false);
  }

  /** Drops a request from the queues and frees its blocks, finished beam hypotheses included (finish or abort). */
  remove(r: Request): void {
    for (const q of [this.waiting, this.running]) {
      const i = q.indexOf(r);
      if (i >= 0) q.splice(i, 1);
    }
    for (const s of r.seqs) this.cache.free(s);
    for (const s of r.beamDone) this.cache.free(s);
  }

  /** A sequence forked from `parent` (n > 1, best_of, beam search) shares all of its blocks. */
  fork(parent: Sequence, child: Sequence): void {
    this.cache.fork(parent, child);
  }

  /** Gives back the blocks of a sequence that finished or that beam search dropped. */
  free(seq: Sequence): void {
    this.cache.free(seq);
  }

  /** After the step's forward: its tokens are in the cache, and blocks that became full are registered. */
  update(step: ScheduledStep): void {
    // Draft tokens count only once verified (`acceptDraft`), so no block holding them is registered before.
    for (const { seq, numTokens, compress, draft } of step.seqs) {
      this.cache.markComputed(seq, numTokens - (draft?.tokens.length ?? 0));
      if (compress) this.kvBlocksSaved += this.cache.compact(seq, compress.budget);
    }
  }

  /** Whether every one of `seqs` can take one more token into the cache without preempting anything. */
  fitsOneMoreEach(seqs: readonly Sequence[]): boolean {
    let blocks = 0;
    for (const seq of seqs) blocks += this.cache.blocksNeeded(seq, 1);
    return blocks <= this.cache.numFree;
  }

  /** The first `accepted` draft tokens of the last step are now the sequence's; the rejected ones' blocks go back. */
  acceptDraft(seq: Sequence, accepted: number): void {
    this.cache.markComputed(seq, accepted);
    this.cache.trim(seq);
  }

  /**
   * Plans one step. `drafts`: proposed tokens of decoding sequences, computed after their own token as far as the
   * token budget and the free blocks allow (speculation shrinks, down to none, before anything is preempted for it).
   */
  schedule(drafts?: ReadonlyMap<Sequence, Proposal>): ScheduledStep {
    const out: ScheduledSeq[] = [];
    const scheduled = new Set<Request>();
    const budget = { tokens: this.config.maxNumBatchedTokens, seqs: this.config.maxNumSeqs };
    let preempted = false;

    for (const decodePhase of [true, false]) {
      for (const r of [...this.running]) {
        if (scheduled.has(r) || !this.running.includes(r) || isDecoding(r) !== decodePhase) continue;
        let plan = this.plan(r, budget.tokens, decodePhase, false, decodePhase ? drafts : undefined);
        if (plan && plan.blocks > this.cache.numFree && plan.draftTokens > 0) {
          plan = this.plan(r, budget.tokens, decodePhase);
        }
        if (!plan || plan.seqs > budget.seqs) continue;
        while (plan.blocks > this.cache.numFree) {
          const victim = this.pickVictim(scheduled, r);
          if (!victim) break;
          this.preempt(victim);
          preempted = true;
          plan = this.plan(r, budget.tokens, decodePhase)!;
        }
        if (plan.blocks > this.cache.numFree && !decodePhase) plan = this.plan(r, budget.tokens, false, true);
        if (!plan || plan.blocks > this.cache.numFree) {
          // Nothing left to take blocks from: this request waits for others to finish.
          this.preempt(r);
          preempted = true;
          continue;
        }
        this.commit(r, plan, out, scheduled, budget);
      }
    }

    // New requests only when nothing had to be preempted (vLLM's rule: don't admit into a full cache).
    while (!preempted && this.waiting.length > 0 && budget.tokens > 0) {
      const r = this.waiting[0]!;
      const plan = this.plan(r, budget.tokens, false);
      if (!plan || plan.seqs > budget.seqs || plan.blocks > this.cache.numFree) break;
      this.waiting.shift();
      this.running.push(r);
      r.metrics.firstScheduledTime ??= Date.now();
      this.commit(r, plan, out, scheduled, budget);
    }
    return { seqs: out, copies: this.cache.takeCopies() };
  }

  /** Share of the step each live sequence of `r` would get, and the free blocks that needs. */
  private plan(
    r: Request,
    tokenBudget: number,
    wholeGroup: boolean,
    fitFreeBlocks = false,
    drafts?: ReadonlyMap<Sequence, Proposal>,
  ): Plan | null {
    const items: PlanItem[] = [];
    let tokens = 0;
    let draftTokens = 0;
    let blocks = 0;
    let seqs = 0;
    const bs = this.cache.blockSize;
    for (const seq of liveSeqs(r)) {
      seqs++;
      if (seq.uncomputed === 0) continue; // waiting for the rest of its request to be sampled together
      const fresh = seq.blockTable.length === 0 && seq.numComputed === 0;
      const compressing = r.kvBudget !== null && seq.kvDropped === 0 && seq.numComputed < seq.promptLen;
      let prefix = fresh && r.params.promptLogprobs === null ? this.cache.findCachedPrefix(seq) : [];
      // A cached prefix leaves the observation window to compute.
      if (compressing) prefix = prefix.slice(0, Math.floor((seq.promptLen - this.window(r)) / bs));
      let n = Math.min(seq.uncomputed - prefix.length * bs, tokenBudget - tokens);
      if (fitFreeBlocks && !fresh) {
        // Shrink a prefill chunk to the blocks that are free now.
        const room = (seq.blockTable.length + this.cache.numFree) * bs - seq.cachedLen;
        n = Math.min(n, this.cache.blocksNeeded(seq, 1) > this.cache.numFree ? 0 : room);
      }
      if (compressing) n = promptChunk(seq.numComputed + prefix.length * bs, n, seq.promptLen, this.window(r));
      if (n <= 0) {
        if (wholeGroup || fitFreeBlocks) return null;
        break;
      }
      const draft = n === seq.uncomputed ? trimDraft(drafts?.get(seq), tokenBudget - tokens - n) : null;
      const extra = draft?.tokens.length ?? 0;
      n += extra;
      draftTokens += extra;
      blocks += fresh ? this.cache.blocksNeededToStart(prefix, n) : this.cache.blocksNeeded(seq, n);
      const endsPrompt = compressing && seq.numComputed + prefix.length * bs + n === seq.promptLen;
      if (endsPrompt) blocks += this.cache.compactionCopies(seq, r.kvBudget!, fresh ? prefix.length : 0);
      items.push({ seq, prefix, numTokens: n, compress: endsPrompt, draft });
      tokens += n;
    }
    return items.length ? { items, tokens, blocks, seqs, draftTokens } : null;
  }

  private commit(
    r: Request,
    plan: Plan,
    out: ScheduledSeq[],
    scheduled: Set<Request>,
    budget: { tokens: number; seqs: number },
  ): void {
    for (const { seq, prefix, numTokens, compress, draft } of plan.items) {
      if (seq.blockTable.length === 0 && seq.numComputed === 0) {
        const cached = this.cache.takeCachedPrefix(seq, prefix);
        if (seq === r.seqs[0] && seq.outputLen === 0) r.metrics.cachedPromptTokens = cached;
      }
      this.cache.allocate(seq, numTokens);
      const completes = seq.numComputed + numTokens - (draft?.tokens.length ?? 0) === seq.tokenIds.length;
      const wantsPromptLogprobs = r.params.promptLogprobs !== null && seq.numComputed < r.promptIds.length;
      const logits = wantsPromptLogprobs || draft ? 'all' : completes ? 'last' : 'none';
      const scheduled: ScheduledSeq = {
        request: r,
        seq,
        start: seq.numComputed,
        cached: seq.cachedLen,
        numTokens,
        logits,
        draft,
      };
      if (compress) {
        this.cache.prepareCompaction(seq, r.kvBudget!);
        scheduled.compress = { budget: r.kvBudget!, window: snapKvWindow(r.kvBudget!, numTokens) };
      }
      out.push(scheduled);
    }
    scheduled.add(r);
    budget.tokens -= plan.tokens;
    budget.seqs -= plan.seqs;
  }

  /** The observation window of a compressing request: its last prompt chunk holds it (a step holds that many). */
  private window(r: Request): number {
    return snapKvWindow(r.kvBudget!, this.config.maxNumBatchedTokens);
  }

  /** The running request to give up first: the most recently admitted (or lowest priority), not yet scheduled. */
  private pickVictim(scheduled: Set<Request>, current: Request): Request | null {
    let victim: Request | null = null;
    for (const r of this.running) {
      if (r === current || scheduled.has(r)) continue;
      if (!victim || this.config.policy === 'fcfs' || compare(r, victim) >= 0) victim = r;
    }
    return victim;
  }

  private preempt(r: Request): void {
    const i = this.running.indexOf(r);
    if (i >= 0) this.running.splice(i, 1);
    for (const s of r.seqs) {
      this.cache.free(s);
      s.pendingLogits = null;
      s.pendingToken = null;
      s.pendingVerify = null;
    }
    this.preemptions++;
    this.enqueue(r, true);
  }

  private enqueue(r: Request, atHead: boolean): void {
    if (this.config.policy === 'priority') {
      const i = this.waiting.findIndex((w) => compare(r, w) < 0);
      this.waiting.splice(i < 0 ? this.waiting.length : i, 0, r);
    } else if (atHead) this.waiting.unshift(r);
    else this.waiting.push(r);
  }
}

interface PlanItem {
  seq: Sequence;
  prefix: number[];
  numTokens: number;
  /** The chunk ends the prompt of a sequence whose KV is compressed after it. */
  compress: boolean;
  draft: Proposal | null;
}

interface Plan {
  items: PlanItem[];
  tokens: number;
  blocks: number;
  /** Live sequences of the request (all count against the cap). */
  seqs: number;
  draftTokens: number;
}

/** The part of a proposal that fits `room` more tokens of the step; null when none does. */
function trimDraft(draft: Proposal | undefined, room: number): Proposal | null {
  const n = Math.min(draft?.tokens.length ?? 0, room);
  if (n <= 0) return null;
  return { tokens: draft!.tokens.slice(0, n), probs: draft!.probs?.slice(0, n) };
}

/**
 * The tokens of a compressing sequence's next prompt chunk, from `start`, when `n` would fit: never past the prompt's
 * end, and never leaving the last chunk less than the observation window; 0 (wait for a roomier step) when the rest
 * of the prompt is the window and does not fit, so the window never depends on what else the step holds.
 */
function promptChunk(start: number, n: number, promptLen: number, window: number): number {
  const left = promptLen - start;
  if (n >= left) return left;
  if (left - n >= window) return n;
  return Math.max(0, left - window);
}

/** Every sequence still computing has just one token to run: a decode. */
function isDecoding(r: Request): boolean {
  return liveSeqs(r).every((s) => s.uncomputed <= 1);
}

/** Priority order: lower priority value first, then earlier arrival. */
function compare(a: Request, b: Request): number {
  return a.priority - b.priority || a.arrivalSeq - b.arrivalSeq;
}
