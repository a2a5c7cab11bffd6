import type { SampledIds, SamplingRow } from '../backend/backend.ts';
import type { StepLogits, StepRunner } from '../runner/model-runner.ts';
import { samplesOnDevice, samplingRow } from './logits.ts';
import { penalizes } from './sampling.ts';
import type { ScheduledSeq, ScheduledStep } from './scheduler.ts';
import { liveSeqs, type Request } from './sequence.ts';
import { stepChunks } from './step-chunks.ts';
import type { StepContext } from './step-context.ts';

/**
 * Async scheduling (vLLM's async scheduling, SGLang's overlap scheduler). A step whose every sequence draws its next
 * token on the device leaves the ids there; the engine then plans and launches the step after it with those ids as
 * its input tokens (the host holds `PENDING_TOKEN` in their place meanwhile), and only then waits for the ids and
 * advances the requests, while the device runs the follow-up. So between decode steps of the same sequences the
 * device never waits for the host's part of a step (planning, uploads, the sampler's round trip, detokenizing,
 * streaming: 0.2-0.45 ms of a batch-1 token on the 8B shape). Anything else — a sequence ended, a request waiting,
 * a grammar, penalties, logprobs, speculation — drains the pipeline and the engine plans the next step as before.
 */

/** A launched step whose device-sampled ids the engine has not taken yet. */
interface InFlightStep {
  step: ScheduledStep;
  ids: SampledIds;
}

/** What the pipeline needs of the engine. */
export interface PipelineHost {
  readonly ctx: StepContext;
  readonly runner: StepRunner;
  /** Takes the next tokens of requests whose sequences all have one ready (streams them, ends finished ones). */
  advance(requests: readonly Request[]): void;
  /** Counts a launched step of `tokens` tokens. */
  launched(tokens: number): void;
}

/** The engine's one step in flight, and the follow-ups launched behind it. */
export class StepPipeline {
  private inFlight: InFlightStep | null = null;

  constructor(private readonly host: PipelineHost) {}

  get busy(): boolean {
    return this.inFlight !== null;
  }

  /** Leaves `step` in flight, its ids on the device, when it `drawsOnDevice` and the runner can; else false. */
  start(step: ScheduledStep, logits: StepLogits): boolean {
    if (!logits.sampleAsync || !drawsOnDevice(step)) return false;
    this.inFlight = { step, ids: logits.sampleAsync(samplingRows(this.host.ctx, step)) };
    return true;
  }

  /**
   * Launches the step after the one in flight where `canFollow` (and `mayPlan`), then waits for the in-flight step's
   * ids and advances its requests. False when it only drained (the caller plans the next step itself).
   */
  followUp(mayPlan: boolean): boolean {
    const prev = this.inFlight!;
    this.inFlight = null;
    const next = mayPlan && canFollow(this.host.ctx, prev) ? this.launchAfter(prev) : null;
    const ids = prev.ids.collect();
    prev.step.seqs.forEach(({ seq }, i) => {
      if (!seq.finished) seq.pendingToken = ids[i]!;
    });
    this.host.advance(prev.step.seqs.map((s) => s.request));
    if (!next) return false;
    // Its input tokens are the sequences' own only now, so its blocks that filled are registered with the real ids.
    // A sequence that ended meanwhile drops its draw; the slot the step wrote is in a block nobody has registered.
    const live = next.step.seqs.filter(({ seq }) => !seq.finished);
    this.host.ctx.scheduler.update({ ...next.step, seqs: live });
    if (live.length > 0) this.inFlight = next;
    else next.ids.collect();
    return true;
  }

  /** Plans and launches `prev`'s sequences one token further, their input tokens taken from `prev`'s ids on the device. */
  private launchAfter(prev: InFlightStep): InFlightStep {
    const seqs = prev.step.seqs.map((s) => s.seq);
    for (const seq of seqs) seq.tokenIds.push(PENDING_TOKEN);
    try {
      const step = this.host.ctx.scheduler.schedule();
      if (step.seqs.length !== seqs.length || step.seqs.some((s, i) => s.seq !== seqs[i] || s.numTokens !== 1)) {
        throw new Error('async scheduling: the follow-up step is not the step in flight one token further');
      }
      const logits = this.host.runner.execute(stepChunks(step), step.copies, prev.ids);
      // One token each: the step in flight's sequences one token further.
      this.host.launched(step.seqs.length);
      return { step, ids: logits.sampleAsync!(samplingRows(this.host.ctx, step)) };
    } finally {
      for (const seq of seqs) seq.tokenIds.pop();
    }
  }
}

/** What a follow-up step's input token holds on the host until the previous step's id comes back. */
export const PENDING_TOKEN = 0;

/** Whether every sequence of `step` (after its `update`) draws its next token on the device, needing nothing else. */
function drawsOnDevice(step: ScheduledStep): boolean {
  return step.seqs.length > 0 && step.seqs.every(plainDraw);
}

function plainDraw({ request: r, seq, logits, draft, compress }: ScheduledSeq): boolean {
  return (
    logits === 'last' &&
    !draft &&
    !compress &&
    !seq.grammar &&
    seq.numComputed === seq.tokenIds.length &&
    r.seqs.length === 1 &&
    samplesOnDevice(r) &&
    // Penalties read the output so far, which would lack the pending token in a follow-up's draw.
    !penalizes(r.params)
  );
}

/** The device sampler's rows of a step that `drawsOnDevice`: sequence i draws from logit row i. */
function samplingRows(ctx: StepContext, step: ScheduledStep): SamplingRow[] {
  return step.seqs.map(({ request, seq }, i) => samplingRow(ctx, request, seq, i));
}

/**
 * Whether the step after `prev` can be planned before `prev`'s ids are known: nobody waits to be admitted, every
 * running sequence is in `prev` and still live, no pending token ends one by length (EOS and stop strings show only
 * with the id: a sequence they end wastes the follow-up's draw, which is dropped), and one more token each fits in
 * the free blocks, so the scheduler plans exactly `prev`'s sequences one token further, preempting nothing.
 */
function canFollow(ctx: StepContext, prev: InFlightStep): boolean {
  const scheduler = ctx.scheduler;
  if (scheduler.waiting.length > 0) return false;
  const seqs = prev.step.seqs;
  let live = 0;
  for (const r of scheduler.running) live += liveSeqs(r).length;
  if (live !== seqs.length) return false;
  for (const { request: r, seq } of seqs) {
    if (r.finished || seq.finished) return false;
    if (seq.outputLen + 1 >= r.params.maxTokens || seq.tokenIds.length + 1 >= ctx.maxModelLen) return false;
  }
  return scheduler.fitsOneMoreEach(seqs.map((s) => s.seq));
}
