import type { Command } from 'commander';
import type { Engine } from '../../engine/engine.ts';
import { Rng } from '../../engine/sequence.ts';
import { UserError } from '../../util/errors.ts';
import { parseIntFlag, parseNumberFlag } from '../engine-options.ts';
import { parseRange } from './flags.ts';

/** An offline workload of random prompts (nano-vllm's bench.py: random token ids, ignore_eos). */
export interface ThroughputWorkload {
  numPrompts: number;
  inputLen: [number, number];
  outputLen: [number, number];
  seed: number;
  temperature: number;
}

/** nano-vllm's defaults: 256 requests, input and output lengths uniform in 100..1024. */
export const NANO_VLLM_WORKLOAD: ThroughputWorkload = {
  numPrompts: 256,
  inputLen: [100, 1024],
  outputLen: [100, 1024],
  seed: 0,
  temperature: 0.6,
};

/** The same shape scaled down for the CPU backend: 8x fewer requests, 10x shorter. */
export const CPU_WORKLOAD: ThroughputWorkload = {
  ...NANO_VLLM_WORKLOAD,
  numPrompts: 32,
  inputLen: [10, 102],
  outputLen: [10, 102],
};

/** The workload's flags, for `bench throughput` and the bench scripts that profile its run. */
export function addWorkloadOptions(cmd: Command): Command {
  return cmd
    .option(
      '--num-prompts <n>',
      `requests (default ${NANO_VLLM_WORKLOAD.numPrompts}; ${CPU_WORKLOAD.numPrompts} on the CPU)`,
    )
    .option('--input-len-range <a,b>', 'prompt lengths, uniform (default 100,1024; 10,102 on the CPU)')
    .option('--output-len-range <a,b>', 'output lengths, uniform, EOS ignored (default 100,1024; 10,102 on the CPU)')
    .option('--temperature <t>', 'sampling temperature', String(NANO_VLLM_WORKLOAD.temperature))
    .option('--seed <n>', 'seed of the workload and of sampling', '0');
}

/** The workload the flags ask for (defaults: nano-vllm's, or `CPU_WORKLOAD`); refused when it cannot fit the model. */
export function workloadFrom(opts: Record<string, unknown>, onCpu: boolean, maxModelLen: number): ThroughputWorkload {
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
  if (w.inputLen[1] + w.outputLen[1] > maxModelLen) {
    throw new UserError(
      `input ${w.inputLen[1]} + output ${w.outputLen[1]} tokens exceed the model length ${maxModelLen}; lower --input-len-range / --output-len-range`,
    );
  }
  return w;
}

/** The workload in words: stderr's line and a results file's heading. */
export function workloadAbout(w: ThroughputWorkload): string {
  return `${w.numPrompts} requests, input ${w.inputLen.join('..')}, output ${w.outputLen.join('..')}`;
}

export interface ThroughputResult {
  requests: number;
  promptTokens: number;
  outputTokens: number;
  seconds: number;
  /** CPU time the process used (user + system): steadier than wall time on a shared machine. */
  cpuSeconds: number;
  requestsPerSecond: number;
  outputTokensPerSecond: number;
  totalTokensPerSecond: number;
  preemptions: number;
  steps: number;
  /** KV blocks KV compression freed during the run. */
  kvBlocksSaved: number;
}

/** Submits every request at once and waits for all of them; times the whole run. */
export async function runThroughput(
  engine: Engine,
  vocabSize: number,
  w: ThroughputWorkload,
): Promise<ThroughputResult> {
  const rng = new Rng(w.seed, 0);
  const int = ([lo, hi]: [number, number]) => lo + Math.floor(rng.next() * (hi - lo + 1));
  const maxId = Math.min(vocabSize, 10_000);
  const requests = Array.from({ length: w.numPrompts }, () => ({
    prompt: Array.from({ length: int(w.inputLen) }, () => Math.floor(rng.next() * maxId)),
    maxTokens: int(w.outputLen),
  }));
  const before = engine.stats();
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let outputTokens = 0;
  await Promise.all(
    requests.map(async (r, i) => {
      const params = { temperature: w.temperature, maxTokens: r.maxTokens, ignoreEos: true, seed: w.seed + i };
      for await (const out of engine.generate({ prompt: r.prompt, params })) {
        for (const d of out.outputs) outputTokens += d.tokenIds.length;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const after = engine.stats();
  const promptTokens = requests.reduce((a, r) => a + r.prompt.length, 0);
  return {
    requests: requests.length,
    promptTokens,
    outputTokens,
    seconds,
    cpuSeconds,
    requestsPerSecond: requests.length / seconds,
    outputTokensPerSecond: outputTokens / seconds,
    totalTokensPerSecond: (promptTokens + outputTokens) / seconds,
    preemptions: after.preemptions - before.preemptions,
    steps: after.steps - before.steps,
    kvBlocksSaved: after.kvBlocksSaved - before.kvBlocksSaved,
  };
}
