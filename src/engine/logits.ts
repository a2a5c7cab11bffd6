import type { SamplingRow } from '../backend/backend.ts';
import { SlotState } from '../grammar/shared-state.ts';
import type { StepLogits } from '../runner/model-runner.ts';
import { tokenLogprob } from './output.ts';
import { allowedTokenMask, bannedTokens, isGreedy, logSoftmax, penalizes, penaltyTokens } from './sampling.ts';
import type { ScheduledSeq } from './scheduler.ts';
import type { Proposal, Request, Sequence } from './sequence.ts';
import { type StepContext, tokenHistory } from './step-context.ts';

/**
 * Takes a step's logits: records prompt logprobs and readies the next token of every sequence whose tokens are all
 * computed, sampled on the device when the backend can and the request needs nothing else from the logits (vLLM's
 * fast path), otherwise its logit row comes to the host for the CPU sampler. Only the rows that are needed leave the
 * device.
 */
export function takeLogits(ctx: StepContext, vocab: number, scheduled: readonly ScheduledSeq[], out: StepLogits): void {
  const hostIndex = new Map<number, number>();
  const toHost = (row: number) => {
    if (!hostIndex.has(row)) hostIndex.set(row, hostIndex.size);
  };
  const promptRows: { r: Request; start: number; count: number; row: number }[] = [];
  const hostSampled: { seq: Sequence; row: number }[] = [];
  const deviceRows: SamplingRow[] = [];
  const deviceSeqs: Sequence[] = [];
  const verified: { seq: Sequence; draft: Proposal; row: number }[] = [];
  let row = 0;
  for (const { request: r, seq, start, numTokens, logits: mode, draft } of scheduled) {
    if (mode === 'all' && seq === r.seqs[0] && r.promptLogprobs) {
      // Row j predicts prompt token start + j + 1, while there is one.
      const count = Math.max(0, Math.min(numTokens, r.promptIds.length - 1 - start));
      for (let j = 0; j < count; j++) toHost(row + j);
      promptRows.push({ r, start, count, row });
    }
    const rows = mode === 'all' ? numTokens : mode === 'last' ? 1 : 0;
    if (draft) {
      // Verification happens on the host: one row per draft token, and the bonus row.
      for (let j = 0; j < rows; j++) toHost(row + j);
      verified.push({ seq, draft, row });
    } else if (rows > 0 && seq.numComputed === seq.tokenIds.length) {
      const last = row + rows - 1;
      if (out.sample && samplesOnDevice(r) && grammarSamplesOnDevice(seq)) {
        deviceRows.push(samplingRow(ctx, r, seq, last));
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
      const top = r.params.promptLogprobs!;
      r.promptLogprobs![next] = tokenLogprob(ctx.tokenizer, r.promptIds[next]!, lp, top, r.promptIds, next);
    }
  }
  for (const { seq, row: logitRow } of hostSampled) seq.pendingLogits = hostRow(logitRow).slice();
  for (const { seq, draft, row: first } of verified) {
    const rows = Array.from({ length: draft.tokens.length + 1 }, (_, j) => hostRow(first + j).slice());
    seq.pendingVerify = { draft, rows };
  }
  if (deviceRows.length > 0) {
    const ids = out.sample!(deviceRows);
    deviceSeqs.forEach((seq, i) => {
      seq.pendingToken = ids[i]!;
    });
  }
}

/**
 * A sequence under a grammar samples on the device with its mask when the mask is there (or about to be: its worker
 * is not compiling) and the grammar still runs; a complete grammar, or a mask owed by a busy worker, goes the host
 * way (which ends the sequence, or draws at a later step).
 */
function grammarSamplesOnDevice(seq: Sequence): boolean {
  const g = seq.grammar;
  return !g || ((g.ready || !g.blocked) && g.state() === SlotState.Running);
}

/**
 * One plain sample per step with no logprobs, typical_p or mirostat: the device sampler implements everything else
 * of SamplingParams.
 */
export function samplesOnDevice(r: Request): boolean {
  const p = r.params;
  return !p.useBeamSearch && p.bestOf === 1 && p.logprobs === null && p.typicalP >= 1 && p.mirostat === 0;
}

/** The tokens both masks allow (as long as the shorter). */
function intersect(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(Math.min(a.length, b.length));
  for (let i = 0; i < out.length; i++) out[i] = a[i]! & b[i]!;
  return out;
}

/**
 * The device sampler's description of a sequence's next draw: the same processors as `applyLogitsProcessors`
 * (min_tokens as a -inf bias on the stop ids), keyed by the request's seed and counted by the output length.
 */
export function samplingRow(ctx: StepContext, r: Request, seq: Sequence, logitRow: number): SamplingRow {
  const p = r.params;
  let logitBias: Record<number, number> | undefined = Object.keys(p.logitBias).length > 0 ? p.logitBias : undefined;
  const banned = bannedTokens(p.badWords, seq.outputIds);
  if (seq.outputLen < p.minTokens) banned.push(...tokenHistory(ctx, r, seq).stopIds);
  if (banned.length > 0) {
    logitBias = { ...p.logitBias };
    for (const id of banned) logitBias[id] = Number.NEGATIVE_INFINITY;
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
  const allowed = p.allowedTokenIds ? allowedTokenMask(p.allowedTokenIds) : null;
  const grammar = seq.grammar ? seq.grammar.mask() : null;
  if (allowed && grammar) row.allowedTokens = intersect(allowed, grammar);
  else if (allowed || grammar) row.allowedTokens = (allowed ?? grammar)!;
  if (penalizes(p)) {
    const { ids, counts } = penaltyTokens(p, tokenHistory(ctx, r, seq));
    row.seenTokens = Int32Array.from(ids);
    row.seenCounts = Int32Array.from(counts);
  }
  return row;
}
