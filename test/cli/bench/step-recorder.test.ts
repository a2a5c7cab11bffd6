import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampledIds, SamplingRow } from '../../../src/backend/backend.ts';
import { stepClass } from '../../../src/cli/bench/step-profile.ts';
import { type DeviceClock, StepRecorder } from '../../../src/cli/bench/step-recorder.ts';
import type { Engine } from '../../../src/engine/engine.ts';
import type { StepLogits } from '../../../src/runner/model-runner.ts';
import type { ScheduledChunk } from '../../../src/runner/step-batch.ts';
import { fakeEngine, submit } from '../../helpers/engine.ts';
import { FakeRunner } from '../../helpers/fake-model.ts';

/** A device whose time moves only where the test says: a forward takes 5 ms, a sampling call 1 ms. */
class FakeDevice implements DeviceClock<number> {
  now = 0;
  mark(): number {
    return this.now;
  }
  elapsedMs(from: number, to: number): number {
    return to - from;
  }
}

/**
 * The fake model on a fake device: with `deviceSampling`, rows are drawn greedily "on the device" and may stay there
 * (async scheduling's follow-up steps take them as their input tokens); counts the decode steps a graph would replay.
 */
class TimedRunner extends FakeRunner {
  replays = 0;
  followUps = 0;
  constructor(
    private readonly device: FakeDevice,
    private readonly deviceSampling: boolean,
  ) {
    super(64, 64, 4);
  }

  override execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][], inputs?: SampledIds) {
    const ids = inputs?.collect();
    if (ids) this.followUps++;
    const own = ids ? chunks.map((c, i) => ({ ...c, tokenIds: [ids[i]!] })) : chunks;
    if (chunks.every((c) => c.tokenIds.length === 1 && c.logits === 'last')) this.replays++;
    const logits = super.execute(own, copies);
    this.device.now += 5;
    const argmax = (rows: readonly SamplingRow[]) =>
      Int32Array.from(rows, (r) => {
        const row = logits.toHost([r.logitRow!]);
        return row.indexOf(Math.max(...row));
      });
    const timed =
      <A extends unknown[], R>(f: (...a: A) => R) =>
      (...a: A) => {
        this.device.now += 1;
        return f(...a);
      };
    const out: StepLogits = { toHost: timed(logits.toHost) };
    if (!this.deviceSampling) return out;
    return {
      ...out,
      sample: timed(argmax),
      sampleAsync: timed((rows: readonly SamplingRow[]): SampledIds => {
        const drawn = argmax(rows);
        return { count: drawn.length, collect: () => drawn };
      }),
    };
  }
}

const PROMPTS = [
  { prompt: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], params: { temperature: 0, maxTokens: 9, ignoreEos: true } },
  { prompt: [3, 4], params: { temperature: 0, maxTokens: 14, ignoreEos: true } },
  {
    prompt: Array.from({ length: 40 }, (_, i) => 1 + (i % 50)),
    params: { temperature: 0, maxTokens: 6, ignoreEos: true },
  },
];

function run(deviceSampling: boolean, asyncScheduling: boolean, recorded: boolean) {
  const device = new FakeDevice();
  const runner = new TimedRunner(device, deviceSampling);
  // A budget of 16 tokens: the 40-token prompt goes in chunks beside the others' decodes.
  const engine: Engine = fakeEngine({
    runner,
    asyncScheduling,
    scheduler: { maxNumBatchedTokens: 16, maxNumSeqs: 16, policy: 'fcfs' },
  });
  const recorder = recorded ? new StepRecorder(engine, device, () => runner.replays) : null;
  const outs = PROMPTS.map((r) => submit(engine, r));
  // The host's 2 ms between steps, in which the device idles.
  while (engine.step()) device.now += 2;
  return { engine, runner, outs, records: recorder?.records(performance.now()) ?? [] };
}

for (const [deviceSampling, asyncScheduling] of [
  [false, false],
  [true, false],
  [true, true],
] as const) {
  test(`recorded steps: ${deviceSampling ? 'device' : 'host'} sampling, async scheduling ${asyncScheduling}`, () => {
    const plain = run(deviceSampling, asyncScheduling, false);
    const { engine, runner, outs, records } = run(deviceSampling, asyncScheduling, true);
    assert.deepEqual(
      outs.map((o) => o.tokenIds),
      plain.outs.map((o) => o.tokenIds),
      'recording changes nothing the engine computes',
    );
    assert.ok(outs.every((o) => o.done));
    const stats = engine.stats();
    assert.equal(records.length, stats.steps);
    const sum = (f: (r: (typeof records)[number]) => number) => records.reduce((a, r) => a + f(r), 0);
    assert.equal(
      sum((r) => r.prefillTokens),
      stats.promptTokens,
    );
    assert.equal(
      sum((r) => r.sampledRows),
      stats.generationTokens,
    );
    assert.ok(records.some((r) => stepClass(r) === 'mixed') && records.some((r) => stepClass(r) === 'decode-only'));
    records.forEach((r, i) => {
      assert.equal(r.graph, stepClass(r) === 'decode-only', `step ${i}: a graph replays exactly the decode steps`);
      assert.equal(r.forwardMs, 5, `step ${i}`);
      assert.equal(r.sampleMs, r.sampledRows > 0 ? 1 : 0, `step ${i}`);
      assert.ok(r.wallMs >= 0 && r.launchMs >= 0 && r.launchMs <= r.wallMs, `step ${i}`);
    });
    // The device idles for the host's 2 ms before every step but the first (the fake device finishes a step at once,
    // so even a follow-up launched behind a step waits for the host).
    assert.deepEqual(
      records.map((r) => r.idleMs),
      records.map((_, i) => (i === 0 ? 0 : 2)),
    );
    assert.equal(
      runner.followUps > 0,
      asyncScheduling,
      'follow-ups (their sampleAsync timed) only with async scheduling',
    );
  });
}
