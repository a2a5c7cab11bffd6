import type { SequenceGrammar } from '../grammar/sequence-grammar.ts';
import type { FinishReason, RequestMetrics, SamplingParams, TokenLogprob } from './types.ts';

/** Turns generated token ids into text a piece at a time (never a broken UTF-8 character). */
export interface TextStream {
  /** Appends one token id and returns the text it completes (may be empty while a character is split). */
  push(tokenId: number): string;
  /** Whatever is still held back (an unfinished character); called once when the sequence ends. */
  flush?(): string;
}

let nextSeqId = 0;

/**
 * One token stream: the prompt followed by what was generated. A request starts with one sequence and forks
 * into several for n > 1, best_of and beam search; forked sequences share the parent's blocks.
 */
export class Sequence {
  readonly id = nextSeqId++;
  /** Prompt then output token ids. */
  tokenIds: number[];
  readonly promptLen: number;
  /** Leading tokens whose K/V were computed (the next token's position). */
  numComputed = 0;
  /** Entries KV compression dropped from the cache: it holds `cachedLen` = numComputed − kvDropped. */
  kvDropped = 0;
  /** The entries its prompt's KV is compressed to once computed (SnapKV), or null: no compression. */
  kvBudget: number | null = null;
  blockTable: number[] = [];
  /** Chained hashes of this sequence's full blocks, computed as blocks fill (prefix caching). */
  blockHashes: string[] = [];
  /** Mixed into the first block's hash (the request's cache salt): the chain is then this salt's alone. */
  cacheSalt: string | undefined;
  /** Sum of the raw-model logprobs of the generated tokens (best_of and beam search rank by it). */
  cumLogprob = 0;
  logprobs: TokenLogprob[] = [];
  finishReason: FinishReason | null = null;
  stopReason: string | number | null = null;
  /** Full generated text so far and how much of it was already streamed (stop strings hold back a tail). */
  text = '';
  emittedChars = 0;
  emittedTokens = 0;
  emittedLogprobs = 0;
  finishReported = false;
  /** Logits for the next token, kept until the whole request is ready to sample. */
  pendingLogits: Float32Array | null = null;
  /** The next token when the backend already sampled it on its device (instead of `pendingLogits`). */
  pendingToken: number | null = null;
  /** Draft tokens the step just verified, with the target's logit rows for each and one more (speculative decoding). */
  pendingVerify: PendingVerify | null = null;
  /** Mirostat's surprise ceiling, carried from draw to draw (null until the first; see mirostat.ts). */
  mirostatMu: number | null = null;
  /** The structured-output matcher its tokens must obey, when the request has one. */
  grammar: SequenceGrammar | null = null;

  constructor(
    tokenIds: number[],
    promptLen: number,
    public detok: TextStream,
    public rng: Rng,
  ) {
    this.tokenIds = tokenIds;
    this.promptLen = promptLen;
  }

  get outputLen(): number {
    return this.tokenIds.length - this.promptLen;
  }

  get outputIds(): number[] {
    return this.tokenIds.slice(this.promptLen);
  }

  /** Whether the next token (or the logits to draw it from) is waiting to be taken. */
  get hasPending(): boolean {
    return this.pendingLogits !== null || this.pendingToken !== null || this.pendingVerify !== null;
  }

  get finished(): boolean {
    return this.finishReason !== null;
  }

  /** Entries the sequence holds in the KV cache (where the next token's K/V goes). */
  get cachedLen(): number {
    return this.numComputed - this.kvDropped;
  }

  /** Tokens still to run through the model before the next token can be sampled. */
  get uncomputed(): number {
    return this.tokenIds.length - this.numComputed;
  }
}

/** Tokens proposed for a sequence's next positions, to be verified by the target model in one step. */
export interface Proposal {
  tokens: number[];
  /** The draft model's distribution each token was drawn from; absent: n-gram lookup (a point mass on the token). */
  probs?: Float32Array[];
}

/** A verified step's outcome, waiting to be sampled: row i predicts the token after draft token i - 1. */
export interface PendingVerify {
  draft: Proposal;
  /** `draft.tokens.length + 1` raw logit rows. */
  rows: Float32Array[];
}

/** The engine's record of one submitted request (vLLM's sequence group). */
export interface Request {
  id: string;
  params: SamplingParams;
  promptIds: number[];
  priority: number;
  arrivalSeq: number;
  /** Sequence i samples with Rng(seed, i). */
  seed: number;
  seqs: Sequence[];
  /** Beam search keeps finished hypotheses here until the request ends. */
  beamDone: Sequence[];
  metrics: RequestMetrics;
  promptLogprobs: (TokenLogprob | null)[] | null;
  promptLogprobsSent: boolean;
  finished: boolean;
  /** The compiled structured-output grammar every sequence follows (`GrammarService` key). */
  grammarKey?: string;
  /** False: special tokens stay in the text (tool-call markers such as [TOOL_CALLS] are special tokens). */
  skipSpecialTokens?: boolean;
  /** Entries its sequences' prompt KV is compressed to once computed (SnapKV), or null: no compression. */
  kvBudget: number | null;
  cacheSalt?: string;
}

/** A request's record as it is admitted: no sequences yet, its metrics starting now. */
export function newRequest(
  admitted: Pick<
    Request,
    | 'id'
    | 'params'
    | 'promptIds'
    | 'priority'
    | 'arrivalSeq'
    | 'seed'
    | 'grammarKey'
    | 'skipSpecialTokens'
    | 'kvBudget'
    | 'cacheSalt'
  >,
): Request {
  return {
    ...admitted,
    seqs: [],
    beamDone: [],
    metrics: {
      arrivalTime: Date.now(),
      firstScheduledTime: null,
      firstTokenTime: null,
      finishedTime: null,
      promptTokens: admitted.promptIds.length,
      cachedPromptTokens: 0,
      generationTokens: 0,
    },
    promptLogprobs: admitted.params.promptLogprobs === null ? null : [null],
    promptLogprobsSent: false,
    finished: false,
  };
}

/** Live sequences (not yet finished) of a request. */
export function liveSeqs(r: Request): Sequence[] {
  return r.seqs.filter((s) => !s.finished);
}

/** A small seeded generator (sfc32) per sequence so sampling never depends on what else is batched. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream: number) {
    // splitmix32 spreads (seed, stream) over the four words; sfc32 then needs a few rounds to mix.
    let x = (Math.floor(seed) ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return (this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  clone(): Rng {
    const r = Object.create(Rng.prototype) as Rng;
    Object.assign(r, this);
    return r;
  }
}
