/**
 * The engine's host time on nano-vllm's workload with the model taken out: a runner that builds each step's batch
 * (as the CUDA runner does) and samples on its "device" instantly, so what is timed is scheduling, block tables,
 * sampling rows, detokenization and streaming — the host time a GPU step must hide or wait for.
 * Usage: npx tsx bench/engine-host.ts [--requests 256] [--tokenizer DIR]   (default: the llama2 fixture tokenizer)
 */
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SamplingRow } from '../src/backend/backend.ts';
import { NANO_VLLM_WORKLOAD, runThroughput } from '../src/cli/bench/throughput.ts';
import { IncrementalDetokenizer } from '../src/engine/detokenizer.ts';
import { Engine } from '../src/engine/engine.ts';
import { loadTokenizer } from '../src/loader/tokenizer.ts';
import type { StepLogits, StepRunner } from '../src/runner/model-runner.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '256' },
    tokenizer: { type: 'string', default: join(root, '..', 'shared', 'fixtures', 'tokenizers', 'llama2') },
  },
});
const VOCAB = 128256;
const BLOCK_SIZE = 16;

/** Builds the batch and answers every sampling row with a pseudo-random id the tokenizer knows. */
class HostOnlyRunner implements StepRunner {
  readonly vocabSize = VOCAB;
  buildMs = 0;
  private next = 1;
  execute(chunks: readonly ScheduledChunk[]): StepLogits {
    const t0 = performance.now();
    buildStepBatch(chunks, BLOCK_SIZE);
    this.buildMs += performance.now() - t0;
    return {
      toHost: () => {
        throw new Error('every row samples on the device here');
      },
      sample: (rows: readonly SamplingRow[]) =>
        Int32Array.from(rows, () => {
          this.next = (this.next * 1103515245 + 12345) % 2147483648;
          return 300 + (this.next % 20000);
        }),
    };
  }
}

const tokenizer = loadTokenizer(opts.tokenizer);
const runner = new HostOnlyRunner();
const numBlocks = 40_000;
const engine = new Engine({
  runner,
  tokenizer,
  newTextStream: (promptIds) => new IncrementalDetokenizer(tokenizer, { promptIds, skipSpecialTokens: true }),
  eosTokenIds: tokenizer.eosTokenIds,
  maxModelLen: 4096,
  numBlocks,
  blockSize: BLOCK_SIZE,
  enablePrefixCaching: true,
  scheduler: { maxNumBatchedTokens: 8192, maxNumSeqs: 256, policy: 'fcfs' },
});
const r = await runThroughput(engine, 20_000, { ...NANO_VLLM_WORKLOAD, numPrompts: Number(opts.requests) });
await engine.shutdown();
const perStep = (r.seconds * 1000) / r.steps;
console.log(
  `| requests | output tokens | steps | host s | host ms/step | of which batch building ms/step | CPU s |\n| --- | --- | --- | --- | --- | --- | --- |\n| ${r.requests} | ${r.outputTokens} | ${r.steps} | ${r.seconds.toFixed(2)} | ${perStep.toFixed(3)} | ${(runner.buildMs / r.steps).toFixed(3)} | ${r.cpuSeconds.toFixed(2)} |`,
);
console.log(`${cpus()[0]?.model}, load average ${loadavg()[0]!.toFixed(1)}, Node ${process.version}`);
