import { appendFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { CPU_WORKLOAD, NANO_VLLM_WORKLOAD, runThroughput, type ThroughputWorkload } from '../../bench/throughput.ts';
import { loadEngine } from '../../runner/load.ts';
import { UserError } from '../../util/errors.ts';
import { markdownTable } from '../../util/markdown.ts';
import { addEngineOptions, engineOptionsFrom, parseIntFlag, parseNumberFlag } from '../engine-options.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda bench <what>`: benchmarks that print a table and append it to bench/RESULTS.md. */
export const registerBench: RegisterCommand = (program) => {
  const bench = new Command('bench').description('benchmarks (results are appended to bench/RESULTS.md)');
  const throughput = new Command('throughput')
    .description("offline throughput on random prompts (nano-vllm's workload; scaled down on the CPU)")
    .option('--model <model>', 'a Hugging Face model folder, or "demo"', 'demo')
    .option(
      '--num-prompts <n>',
      `requests (default ${NANO_VLLM_WORKLOAD.numPrompts}; ${CPU_WORKLOAD.numPrompts} on the CPU)`,
    )
    .option('--input-len-range <a,b>', 'prompt lengths, uniform (default 100,1024; 10,102 on the CPU)')
    .option('--output-len-range <a,b>', 'output lengths, uniform, EOS ignored (default 100,1024; 10,102 on the CPU)')
    .option('--temperature <t>', 'sampling temperature', String(NANO_VLLM_WORKLOAD.temperature))
    .option('--seed <n>', 'seed of the workload and of sampling', '0')
    .option('--results-file <path>', 'markdown file the result is appended to', 'bench/RESULTS.md')
    .option('--no-save', 'print only');
  addEngineOptions(throughput);
  throughput.action(async (opts: Record<string, unknown>) => {
    const loaded = loadEngine(opts.model as string, engineOptionsFrom(opts));
    const onCpu = loaded.backend === 'cpu';
    const base = onCpu ? CPU_WORKLOAD : NANO_VLLM_WORKLOAD;
    const w: ThroughputWorkload = {
      numPrompts:
        opts.numPrompts === undefined ? base.numPrompts : parseIntFlag(String(opts.numPrompts), '--num-prompts'),
      inputLen:
        opts.inputLenRange === undefined ? base.inputLen : parseRange(String(opts.inputLenRange), '--input-len-range'),
      outputLen:
        opts.outputLenRange === undefined
          ? base.outputLen
          : parseRange(String(opts.outputLenRange), '--output-len-range'),
      temperature: parseNumberFlag(String(opts.temperature), '--temperature'),
      seed: parseIntFlag(String(opts.seed), '--seed'),
    };
    const maxLen = loaded.engine.config.maxModelLen;
    if (w.inputLen[1] + w.outputLen[1] > maxLen) {
      throw new UserError(
        `input ${w.inputLen[1]} + output ${w.outputLen[1]} tokens exceed the model length ${maxLen}; lower --input-len-range / --output-len-range`,
      );
    }
    process.stderr.write(
      `${w.numPrompts} requests, input ${w.inputLen.join('..')}, output ${w.outputLen.join('..')} tokens, model ${loaded.modelName}\n`,
    );
    const r = await runThroughput(loaded.engine, loaded.config.vocabSize, w);
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
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(16)} ${v}\n`);
    if (opts.save === false) return;
    const file = String(opts.resultsFile);
    if (!existsSync(dirname(file))) {
      process.stderr.write(`note: ${dirname(file)} does not exist, result not saved\n`);
      return;
    }
    const cpu = cpus();
    const command =
      `pagoda bench throughput ${process.argv.slice(process.argv.indexOf('throughput') + 1).join(' ')}`.trim();
    appendFileSync(
      file,
      `\n## throughput — ${new Date().toISOString().slice(0, 10)}, ${cpu[0]?.model ?? 'unknown CPU'} (${cpu.length} cores), Node ${process.version}, ${onCpu ? 'CPU backend' : `CUDA backend on ${loaded.deviceName}`}, load average ${loadavg()[0]!.toFixed(1)}\n\n` +
        `Command: \`${command}\` (model ${loaded.modelName}; ${w.numPrompts} requests, input ${w.inputLen.join('..')}, output ${w.outputLen.join('..')}, ignore_eos)\n\n` +
        `${markdownTable(
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
            ],
          ],
        )}\n`,
    );
    process.stderr.write(`appended to ${file}\n`);
  });
  bench.addCommand(throughput);
  program.addCommand(bench);
};

function parseRange(v: string, flag: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  if (!m || lo < 1 || hi < lo) throw new UserError(`${flag} ${v}: expected two integers a,b with 1 <= a <= b`);
  return [lo, hi];
}
