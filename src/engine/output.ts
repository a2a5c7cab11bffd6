import type { TextTokenizer } from '../loader/tokenizer.ts';
import { heldBackLength } from '../util/held-back.ts';
import { topEntries } from './sampling.ts';
import type { Request, Sequence } from './sequence.ts';
import { findStop } from './stop-strings.ts';
import type { CompletionDelta, RequestOutput, TokenLogprob } from './types.ts';

/**
 * Output assembly, vLLM's output processor: incremental detokenization, stop strings, logprob entries, and the
 * incremental `RequestOutput` of each request.
 */

/**
 * Detokenizes a sequence's new token; a stop string in the text it completes ends the sequence (true), the text cut
 * before it (after it with `keepStop`).
 */
export function appendText(seq: Sequence, token: number, stops: readonly string[], keepStop = false): boolean {
  const before = seq.text.length;
  seq.text += seq.detok.push(token);
  const hit = findStop(seq.text, stops, before);
  if (!hit) return false;
  seq.text = seq.text.slice(0, hit.index + (keepStop ? hit.stop.length : 0));
  seq.finishReason = 'stop';
  seq.stopReason = hit.stop;
  return true;
}

/**
 * A logprob entry for the token at `ids[at]` (or a candidate there). Token text is decoded after the few tokens
 * before it, as vLLM does, so a leading space that a tokenizer drops at the start of a decode is kept.
 */
export function tokenLogprob(
  tok: TextTokenizer,
  tokenId: number,
  lp: Float32Array,
  top: number,
  ids: readonly number[],
  at: number,
): TokenLogprob {
  const context = ids.slice(Math.max(0, at - 3), at);
  const prefix = tok.decode(context);
  const text = (id: number) => {
    const full = tok.decode([...context, id]);
    return full.startsWith(prefix) ? full.slice(prefix.length) : tok.decode([id]);
  };
  const logprob = lp[tokenId]!;
  let above = 0;
  for (let i = 0; i < lp.length; i++) if (lp[i]! > logprob) above++;
  return {
    tokenId,
    token: text(tokenId),
    logprob,
    rank: above + 1,
    top: topEntries(lp, top).map(({ id, value }) => ({ tokenId: id, token: text(id), logprob: value })),
  };
}

/**
 * What is new in a request since its last output, or null when there is nothing to send. best_of > n and beam search
 * rank their candidates, so they report once, at the end.
 */
export function takeOutput(r: Request, tokenizer: TextTokenizer): RequestOutput | null {
  const p = r.params;
  const ranked = p.useBeamSearch || p.bestOf > p.n;
  if (ranked && !r.finished) return null;
  const outputs: CompletionDelta[] = [];
  if (ranked) {
    for (const [index, seq] of best(r).entries()) {
      const ids = seq.outputIds;
      const text = p.useBeamSearch ? tokenizer.decode(textIds(seq, ids)) : seq.text;
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
  if (outputs.length === 0 && !r.finished) return null;
  return {
    requestId: r.id,
    promptTokenIds: r.promptIds,
    promptLogprobs: sendPromptLogprobs ? r.promptLogprobs : null,
    outputs,
    finished: r.finished,
    metrics: { ...r.metrics },
  };
}

/** The n completions to return: beam hypotheses by length-penalized score, best_of samples by cumulative logprob. */
function best(r: Request): Sequence[] {
  const p = r.params;
  const score = (s: Sequence) =>
    p.useBeamSearch ? s.cumLogprob / Math.max(1, s.outputLen) ** p.lengthPenalty : s.cumLogprob;
  const pool = p.useBeamSearch ? r.beamDone : r.seqs;
  return [...pool].sort((a, b) => score(b) - score(a)).slice(0, p.n);
}

/** Output ids that make up the text: a final EOS / stop token is not text. */
function textIds(seq: Sequence, ids: number[]): number[] {
  return seq.finishReason === 'stop' && typeof seq.stopReason !== 'string' ? ids.slice(0, -1) : ids;
}
