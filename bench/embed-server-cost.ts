/**
 * The server's own cost per /v1/embeddings request: tiny-bert's engine behind the real route, with a pooler that
 * computes nothing (rows of zeros, `--width` wide), so the time is the route's, the engine's bookkeeping and HTTP's.
 * The server thread's CPU time is read from /proc (Linux).
 * Usage: npx tsx bench/embed-server-cost.ts [--num-inputs 4000] [--clients 64] [--width 768]
 */
import { readFileSync } from 'node:fs';
import { embedInputs } from '../src/cli/bench/embed.ts';
import { throughServer } from '../src/cli/commands/bench-embed.ts';
import { PoolingEngine } from '../src/engine/pooling-engine.ts';
import { loadPoolingEngine } from '../src/engine/pooling-load.ts';

const flag = (name: string, d: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? d : Number(process.argv[i + 1]);
};
const N = flag('--num-inputs', 4000);
const clients = flag('--clients', 64);
const width = flag('--width', 768);
const loaded = loadPoolingEngine('test/fixtures/models/tiny-bert', { device: 'cpu' });
const real = loaded.engine.config;
const engine = new PoolingEngine({
  ...real,
  maxNumBatchedTokens: 1 << 20,
  maxNumSeqs: 1024,
  runner: {
    task: real.runner.task,
    outputSize: width,
    normalized: real.runner.normalized,
    vocabSize: real.runner.vocabSize,
    computesApart: false,
    run: async (inputs) => new Float32Array(inputs.length * width),
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
console.log(
  `${N} requests, ${clients} clients: ${((r.seconds * 1e6) / N).toFixed(0)} µs per request (wall), ${((cpu * 1e6) / N).toFixed(0)} µs of the server thread's CPU, ${r.embeddingsPerSecond.toFixed(0)}/s, ${r.steps} engine steps`,
);
await engine.shutdown();
await loaded.engine.shutdown();
