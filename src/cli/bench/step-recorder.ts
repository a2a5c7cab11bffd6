import type { Engine } from '../../engine/engine.ts';
import type { StepLogits } from '../../runner/model-runner.ts';
import { type StepRecord, type StepShape, stepShape } from './step-profile.ts';

/**
 * Marks on the device's stream, in the order recorded, read once the device has passed them (CUDA events). Recording a
 * mark must not wait for the device, so a measured step runs as an unmeasured one would.
 */
export interface DeviceClock<Mark> {
  mark(): Mark;
  /** Device milliseconds from `from` to `to`, both passed. */
  elapsedMs(from: Mark, to: Mark): number;
}

interface LaunchedStep<Mark> {
  shape: StepShape;
  launchAt: number;
  launchMs: number;
  graph: boolean;
  forward?: [Mark, Mark];
  samples: [Mark, Mark][];
}

/**
 * Measures every step of an engine without changing what runs: the scheduler's plan gives the step's shape, and the
 * runner's `execute` and the sampling of its logits are wrapped (host clock around the launch, device marks around
 * the forward and around each sampling call). Records are read after the run.
 */
export class StepRecorder<Mark> {
  private readonly steps: LaunchedStep<Mark>[] = [];
  private planned: StepShape | null = null;

  /** `graphReplays`: the backend's count of replayed decode graphs, read around each forward. */
  constructor(
    engine: Engine,
    private readonly clock: DeviceClock<Mark> | null,
    private readonly graphReplays: () => number = () => 0,
  ) {
    const scheduler = engine.scheduler;
    const schedule = scheduler.schedule.bind(scheduler);
    scheduler.schedule = (drafts) => {
      const step = schedule(drafts);
      this.planned = stepShape(step.seqs);
      return step;
    };
    const runner = engine.config.runner;
    const execute = runner.execute.bind(runner);
    runner.execute = (chunks, copies, inputs) => this.launch(() => execute(chunks, copies, inputs));
  }

  /** Every step launched so far; `endAt` (performance.now()) ends the last one's wall time. */
  records(endAt: number): StepRecord[] {
    let previousEnd: Mark | undefined;
    return this.steps.map((s, i) => {
      const wallMs = (this.steps[i + 1]?.launchAt ?? endAt) - s.launchAt;
      const host = { ...s.shape, graph: s.graph, wallMs, launchMs: s.launchMs };
      if (!this.clock || !s.forward) return { ...host, forwardMs: null, sampleMs: null, idleMs: null };
      const c = this.clock;
      const forwardMs = c.elapsedMs(...s.forward);
      const sampleMs = s.samples.reduce((a, [from, to]) => a + c.elapsedMs(from, to), 0);
      const end = s.samples.at(-1)?.[1] ?? s.forward[1];
      const spanMs = c.elapsedMs(previousEnd ?? s.forward[0], end);
      previousEnd = end;
      return { ...host, forwardMs, sampleMs, idleMs: spanMs - forwardMs - sampleMs };
    });
  }

  private launch(execute: () => StepLogits): StepLogits {
    const shape = this.planned;
    if (!shape) throw new Error('step recorder: a step ran that the scheduler did not plan');
    this.planned = null;
    const launchAt = performance.now();
    const replays = this.graphReplays();
    const from = this.clock?.mark();
    const logits = execute();
    const to = this.clock?.mark();
    const step: LaunchedStep<Mark> = {
      shape,
      launchAt,
      launchMs: performance.now() - launchAt,
      graph: this.graphReplays() > replays,
      forward: from === undefined ? undefined : [from, to!],
      samples: [],
    };
    this.steps.push(step);
    const timed = <A extends unknown[], R>(f: ((...args: A) => R) | undefined) =>
      f &&
      ((...args: A): R => {
        const start = this.clock?.mark();
        const out = f.apply(logits, args);
        if (start !== undefined) step.samples.push([start, this.clock!.mark()]);
        return out;
      });
    return { toHost: timed(logits.toHost)!, sample: timed(logits.sample), sampleAsync: timed(logits.sampleAsync) };
  }
}
