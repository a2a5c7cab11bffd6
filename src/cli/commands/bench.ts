import { Command } from 'commander';
import { loadEngine } from '../../engine/load.ts';
import { UserError } from '../../util/errors.ts';
import { atLeast, printRows, saveFile } from '../bench/flags.ts';
import { LATENCY_DEFAULTS, type LatencyWorkload, quantile, runLatency } from '../bench/latency.ts';
import { appendBenchResult, benchCommand } from '../bench/results.ts';
import { speculationRows } from '../bench/speculation.ts';
import { addWorkloadOptions, runThroughput, workloadAbout, workloadFrom } from '../bench/throughput.ts';
import { addEngineOptions, engineOptionsFrom, parseIntFlag } from '../engine-options.ts';
import { embedBenchCommand } from './bench-embed.ts';
import { serveBenchCommand } from './bench-serve.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda bench <what>`: benchmarks that print a table, and append it to a markdown file with `--save FILE`. */
export const registerBench: RegisterCommand = (program) => {
  const bench = new Command('bench').description('benchmarks (printed; --save FILE appends the table to FILE)');
  const throughput = addWorkloadOptions(
    new Command('throughput')
      .description("offline throughput on random prompts (nano-vllm's workload; scaled down on the CPU)")
      .option('--model <model>', 'a Hugging Face model folder, or "demo"', 'demo'),
  ).option('--save <file>', 'also append the result (date, machine, command, table) to this markdown file');
  addEngineOptions(throughput);
  throughput.action(async (opts: Record<string, unknown>) => {
    const save = saveFile(opts);
    const loaded = loadEngine(opts.model as string, engineOptionsFrom(opts));
    const w = workloadFrom(opts, loaded.backend === 'cpu', loaded.engine.config.maxModelLen);
    process.stderr.write(`${workloadAbout(w)} tokens, model ${loaded.modelName}\n`);
    const before = loaded.engine.stats();
    const r = await runThroughput(loaded.engine, loaded.config.vocabSize, w);
    const spec = speculationRows(!!loaded.engine.config.speculative, before, loaded.engine.stats());
    await loaded.engine.shutdown();
    const rows: [string, string][] = [
      ['requests', String(r.requests)],
      ['prompt tokens', String(r.promptTokens)],
      ['output tokens', String(r.outputTokens)],
      ['seconds', r.seconds.toFixed(2)],
      ['CPU seconds', r.cpuSeconds.toFixed(2)],
      ['requests/s', r.requestsPerSecond.toFixed(2)],
      ['output tokens/s', r.outputTokensPerSecond.toFixed(1)],
      ['total tokens/s', r.totalTokensPerSecond.toFixed(1)],
      ['output tok/CPU-s', (r.outputTokens / r.cpuSeconds).toFixed(1)],
      ['engine steps', String(r.steps)],
      ['preemptions', String(r.preemptions)],
      ...spec,
    ];
    const compressed = loaded.engine.config.kvCompression !== undefined;
    if (compressed) rows.push(['KV blocks saved', String(r.kvBlocksSaved)]);
    printRows(rows);
    if (save === undefined) return;
    appendBenchResult(
      save,
      {
        name: 'throughput',
        deviceName: loaded.deviceName,
        command: benchCommand('throughput'),
        about: `model ${loaded.modelName}; ${workloadAbout(w)}, ignore_eos`,
      },
      [
        'requests/s',
        'output tokens/s',
        'total tokens/s',
        'seconds',
        'CPU seconds',
        'output tokens/CPU-s',
        'output tokens',
        'prompt tokens',
        'preemptions',
        ...(compressed ? ['KV blocks saved'] : []),
        ...spec.map(([label]) => label),
      ],
      [
        [
          r.requestsPerSecond.toFixed(2),
          r.outputTokensPerSecond.toFixed(1),
          r.totalTokensPerSecond.toFixed(1),
          r.seconds.toFixed(2),
          r.cpuSeconds.toFixed(2),
          (r.outputTokens / r.cpuSeconds).toFixed(1),
          String(r.outputTokens),
          String(r.promptTokens),
          String(r.preemptions),
          ...(compressed ? [String(r.kvBlocksSaved)] : []),
          ...spec.map(([, value]) => value),
        ],
      ],
    );
  });
  bench.addCommand(throughput);

  const latency = new Command('latency')
    .description("one batch of random prompts timed end to end, as vLLM's bench latency (ms per output token, TTFT)")
    .option('--model <model>', 'a Hugging Face model folder, or "demo"', 'demo')
    .option('--input-len <n>', 'prompt tokens per request', String(LATENCY_DEFAULTS.inputLen))
    .option('--output-len <n>', 'output tokens per request, EOS ignored', String(LATENCY_DEFAULTS.outputLen))
    .option('--batch-size <n>', 'requests per iteration', String(LATENCY_DEFAULTS.batchSize))
    .option('--num-iters-warmup <n>', 'untimed iterations first', String(LATENCY_DEFAULTS.warmupIters))
    .option('--num-iters <n>', 'timed iterations', String(LATENCY_DEFAULTS.iters))
    .option('--seed <n>', 'seed of the prompts and of sampling', '0')
    .option('--save <file>', 'also append the result (date, machine, command, table) to this markdown file');
  addEngineOptions(latency);
  latency.action(async (opts: Record<string, unknown>) => {
    const w: LatencyWorkload = {
      inputLen: atLeast(opts.inputLen, '--input-len', 1),
      outputLen: atLeast(opts.outputLen, '--output-len', 1),
      batchSize: atLeast(opts.batchSize, '--batch-size', 1),
      warmupIters: atLeast(opts.numItersWarmup, '--num-iters-warmup', 0),
      iters: atLeast(opts.numIters, '--num-iters', 1),
      seed: parseIntFlag(String(opts.seed), '--seed'),
    };
    const save = saveFile(opts);
    const loaded = loadEngine(opts.model as string, engineOptionsFrom(opts));
    const maxLen = loaded.engine.config.maxModelLen;
    if (w.inputLen + w.outputLen > maxLen) {
      throw new UserError(
        `--input-len ${w.inputLen} + --output-len ${w.outputLen} = ${w.inputLen + w.outputLen} tokens exceed the model length ${maxLen}`,
      );
    }
    process.stderr.write(
      `batch ${w.batchSize}, input ${w.inputLen}, output ${w.outputLen} tokens, ${w.warmupIters} warm-up + ${w.iters} timed iterations, model ${loaded.modelName}\n`,
    );
    const before = loaded.engine.stats();
    const r = await runLatency(loaded.engine, loaded.config.vocabSize, w);
    const spec = speculationRows(!!loaded.engine.config.speculative, before, loaded.engine.stats());
    await loaded.engine.shutdown();
    const mean = r.latencies.reduce((a, x) => a + x, 0) / r.latencies.length;
    const figures = [
      mean.toFixed(3),
      quantile(r.latencies, 0.5).toFixed(3),
      quantile(r.latencies, 0.9).toFixed(3),
      r.ttftMs.toFixed(1),
      r.msPerOutputToken.toFixed(2),
      ...spec.map(([, value]) => value),
    ];
    const header = [
      'avg latency s',
      'p50 s',
      'p90 s',
      'TTFT ms',
      'ms per output token',
      ...spec.map(([label]) => label),
    ];
    printRows(header.map((h, i) => [h, figures[i]!]));
    if (save === undefined) return;
    appendBenchResult(
      save,
      {
        name: 'latency',
        deviceName: loaded.deviceName,
        command: benchCommand('latency'),
        about: `model ${loaded.modelName}; batch ${w.batchSize}, input ${w.inputLen}, output ${w.outputLen}, ignore_eos, ${w.iters} timed iterations`,
      },
      header,
      [figures],
    );
  });
  bench.addCommand(latency);
  bench.addCommand(embedBenchCommand());
  bench.addCommand(serveBenchCommand());
  program.addCommand(bench);
};
