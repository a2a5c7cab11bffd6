/**
 * Where `pagoda bench throughput`'s time goes, step by step: the same workload (nano-vllm's by default: 256 requests,
 * input and output lengths uniform in 100..1024, ignore_eos) through the same engine, every step recorded (class,
 * prefill tokens, decode sequences, context attended, graph replay; host wall time between launches and inside the
 * launch; on CUDA the forward's and the sampling's device time from events read after the run), then summed per
 * step class and decode batch size with the device-busy fraction and, for decode steps, the GB/s a read of the weights
 * once plus every attended key's K and V amounts to. Run on the device (async scheduling on; off with
 * --no-async-scheduling), `--save FILE` appends the table:
 *   node --import tsx bench/throughput-profile.ts --model bench/configs/llama3-8b --device cuda --load-format dummy \
 *     --max-model-len 2048 [--no-async-scheduling] [--quantization Q] [--num-prompts N] [--save bench/RESULTS.md]
 * On the CPU (no device clock) the host columns only.
 */
import { Command } from 'commander';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import type { CudaDriver, Handle } from '../src/backend/cuda/driver.ts';
import { saveFile } from '../src/cli/bench/flags.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { deviceBusyFraction, SUMMARY_HEADER, summaryRows } from '../src/cli/bench/step-profile.ts';
import { type DeviceClock, StepRecorder } from '../src/cli/bench/step-recorder.ts';
import { addWorkloadOptions, runThroughput, workloadAbout, workloadFrom } from '../src/cli/bench/throughput.ts';
import { addEngineOptions, engineOptionsFrom } from '../src/cli/engine-options.ts';
import { loadEngine } from '../src/engine/load.ts';
import { ModelRunner } from '../src/runner/model-runner.ts';
import { markdownTable } from '../src/util/markdown.ts';

/** CUDA events with timing on the backend's stream: recorded without a wait, read once the run is over. */
class CudaEventClock implements DeviceClock<Handle> {
  private readonly events: Handle[] = [];

  constructor(private readonly drv: CudaDriver) {}

  mark(): Handle {
    const e = this.drv.createEvent(0);
    this.events.push(e);
    this.drv.check(this.drv.api.cuEventRecord(e, this.drv.stream), 'cuEventRecord');
    return e;
  }

  elapsedMs(from: Handle, to: Handle): number {
    const ms = [0];
    this.drv.check(this.drv.api.cuEventElapsedTime(ms, from, to), 'cuEventElapsedTime');
    return ms[0]!;
  }

  release(): void {
    for (const e of this.events) this.drv.destroyEvent(e);
    this.events.length = 0;
  }
}

const cmd = addWorkloadOptions(
  new Command('throughput-profile').option('--model <model>', 'a model folder, or "demo"', 'demo'),
).option('--save <file>', 'also append the table (date, machine, command) to this markdown file');
addEngineOptions(cmd);
cmd.action(async (opts: Record<string, unknown>) => {
  const save = saveFile(opts);
  const options = engineOptionsFrom(opts);
  const loaded = loadEngine(opts.model as string, options);
  const engine = loaded.engine;
  const w = workloadFrom(opts, loaded.backend === 'cpu', engine.config.maxModelLen);
  const runner = engine.config.runner;
  const backend = runner instanceof ModelRunner ? runner.model.backend : null;
  const cuda = backend instanceof CudaBackend ? backend : null;
  const clock = cuda && new CudaEventClock(cuda.ctx.drv);
  const recorder = new StepRecorder(engine, clock, () => cuda?.graphs?.stats.replays ?? 0);
  const pipelined = options.asyncScheduling !== false && !engine.config.speculative;
  const about = `model ${loaded.modelName}; ${workloadAbout(w)}, ignore_eos; async scheduling ${pipelined ? 'on' : 'off'}`;
  process.stderr.write(`${about}\n`);

  const capturesBefore = cuda?.graphs?.stats.captures ?? 0;
  const r = await runThroughput(engine, loaded.config.vocabSize, w);
  cuda?.ctx.drv.sync();
  const records = recorder.records(performance.now());
  clock?.release();
  await engine.shutdown();

  const wallMs = r.seconds * 1000;
  const busy = deviceBusyFraction(records, wallMs);
  const bytes = cuda
    ? {
        weightBytes: cuda.ctx.weights.usedBytes,
        kvBytesPerToken: loaded.kvCacheBytes / (loaded.numBlocks * loaded.blockSize),
      }
    : undefined;
  const rows = summaryRows(records, bytes);
  const figures = [
    `${r.outputTokens} output tokens in ${r.seconds.toFixed(2)} s: ${r.outputTokensPerSecond.toFixed(1)} tok/s`,
    `${records.length} steps (engine: ${r.steps}), ${r.preemptions} preemptions`,
    busy === null ? 'no device clock: host times only' : `device busy ${(100 * busy).toFixed(1)}% of the wall time`,
    ...(cuda?.graphs ? [`decode graphs captured during the run: ${cuda.graphs.stats.captures - capturesBefore}`] : []),
    ...(bytes
      ? [
          `decode bytes model: weights ${(bytes.weightBytes / 1e9).toFixed(2)} GB once a step (the embedding table whole), K+V ${bytes.kvBytesPerToken} B a token`,
        ]
      : []),
  ];
  console.log(`\n${about}\n\n${markdownTable(SUMMARY_HEADER, rows)}\n\n${figures.join('\n')}`);
  if (save === undefined) return;
  appendBenchResult(
    save,
    {
      name: 'throughput profile',
      deviceName: loaded.deviceName,
      command: `node --import tsx bench/throughput-profile.ts ${process.argv.slice(2).join(' ')}`.trim(),
      about: `${about}; ${figures.join('; ')}`,
    },
    SUMMARY_HEADER,
    rows,
  );
});
await cmd.parseAsync(process.argv);
