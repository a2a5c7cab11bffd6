/**
 * The server's own cost per /v1/embeddings request: tiny-bert's engine behind the real route, with a pooler that
 * computes nothing (rows of zeros, `--width` wide), so the time is the route's, the engine's bookkeeping and HTTP's.
 * The server thread's CPU time is read from /proc (Linux).
 * With `--device-us-per-token N` the pooler is a simulated device that computes apart from the thread (as CUDA does):
 * each launch holds the thread for `--launch-us` (the host's launch work, which the device starts on at once), and
 * the step's rows come N µs per token after the device is free (steps run one after another). The run then also reports the offline rate on the same
 * device and the HTTP run's share of it: the engine's pipelining measured without a GPU.
 * Usage: npx tsx bench/embed-server-cost.ts [--num-inputs 4000] [--clients 64] [--width 768]
 *          [--device-us-per-token 0] [--launch-us 0] [--budget 16384]
 * `--device-us-per-token 2.8 --launch-us 1000 --budget 575` gives the steps of the H100's bert-base run at
 * `--max-num-batched-tokens 575` (1.19 ms each, 1.6 inputs a step, offline bound by the launches).
 */
import { readFileSync } from 'node:fs';
import { embedInputs, runEmbedOffline } from '../src/cli/bench/embed.ts';
import { throughServer } from '../src/cli/commands/bench-embed.ts';
import { PoolingEngine } from '../src/engine/pooling-engine.ts';
import { loadPoolingEngine } from '../src/engine/pooling-load.ts';
import type { PoolingInput } from '../src/runner/pooling-batch.ts';

const flag = (name: string, d: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? d : Number(process.argv[i + 1]);
};
const N = flag('--num-inputs', 4000);
const clients = flag('--clients', 64);
const width = flag('--width', 768);
const usPerToken = flag('--device-us-per-token', 0);
const launchUs = flag('--launch-us', 0);
const budget = flag('--budget', usPerToken > 0 ? 16384 : 1 << 20);
const loaded = await loadPoolingEngine('test/fixtures/models/tiny-bert', { device: 'cpu' });
const real = loaded.engine.config;

/** When the simulated device finishes the work queued so far (ms, performance.now()). */
let deviceFree = 0;
function simulatedStep(inputs: readonly PoolingInput[]): Promise<Float32Array> {
  const t0 = performance.now();
  while (performance.now() - t0 < launchUs / 1000); // the host's launch work holds the thread
  // The device starts on the step's first kernels while the host is still launching the rest; it ends no sooner than
  // the last launch.
  const tokens = inputs.reduce((a, s) => a + s.tokenIds.length, 0);
  deviceFree = Math.max(Math.max(t0, deviceFree) + (tokens * usPerToken) / 1000, performance.now());
  const rows = new Float32Array(inputs.length * width);
  return new Promise((resolve) => setTimeout(() => resolve(rows), deviceFree - performance.now()));
}

const engine = new PoolingEngine({
  ...real,
  // The loaded engine frees the backend at its own shutdown, not this copy.
  release: undefined,
  maxNumBatchedTokens: budget,
  maxNumSeqs: usPerToken > 0 ? 256 : 1024,
  runner: {
    task: real.runner.task,
    outputSize: width,
    normalized: real.runner.normalized,
    vocabSize: real.runner.vocabSize,
    computesApart: usPerToken > 0,
    run:
      usPerToken > 0
        ? async (inputs) => simulatedStep(inputs)
        : async (inputs) => new Float32Array(inputs.length * width),
  },
});
const inputs = embedInputs(loaded.config.vocabSize, { numInputs: N, inputLen: [16, 512], seed: 0 });
// Warm-up: the route's code compiled, the connections open.
await throughServer({ ...loaded, engine }, inputs.slice(0, 500), clients);
/** CPU seconds of this process's main thread, the server's (Linux: utime + stime of its task, in clock ticks). */
const mainThreadCpu = () => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const cpu0 = mainThreadCpu();
const r = await throughServer({ ...loaded, engine }, inputs, clients);
const cpu = mainThreadCpu() - cpu0;
// The simulated launches hold the thread for a known wall time; the rest is the server's own (on a loaded machine a
// launch's spin is partly preempted, which makes this read low).
const launchShare = (r.steps * launchUs) / N;
const own = launchUs > 0 ? ` (${((cpu * 1e6) / N - launchShare).toFixed(0)} µs besides the launches)` : '';
console.log(
  `${N} requests, ${clients} clients: ${((r.seconds * 1e6) / N).toFixed(0)} µs per request (wall), ${((cpu * 1e6) / N).toFixed(0)} µs of the server thread's CPU${own}, ${r.embeddingsPerSecond.toFixed(0)}/s, ${r.steps} engine steps`,
);
if (usPerToken > 0) {
  const offline = await runEmbedOffline(engine, inputs);
  console.log(
    `simulated device (${usPerToken} µs/token, ${launchUs} µs launches): offline ${offline.embeddingsPerSecond.toFixed(0)}/s in ${offline.steps} steps; /v1/embeddings ${(r.embeddingsPerSecond / offline.embeddingsPerSecond).toFixed(2)}x of it`,
  );
}
await engine.shutdown();
await loaded.engine.shutdown();
