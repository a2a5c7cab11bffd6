/**
 * GPU benchmark with a dummy-weight model (--load-format dummy: random weights made on the device from config.json
 * alone, bf16 or with --dtype f16 float16): batch-1 decode latency and offline throughput on nano-vllm's workload
 * (256 requests, input and output lengths uniform in 100..1024, ignore_eos, temperature 0.6). Prints a markdown
 * table; run on the device:
 *   node --import tsx bench/cuda.ts <model-config-dir> [--dtype bf16|f16] [--requests 256] [--cb-requests 32 --cb-out 256]
 */

import type { SamplingRow } from '../src/backend/backend.ts';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadDummyModel } from '../src/models/dummy.ts';
import type { Model } from '../src/models/model.ts';
import { profileKvBlocks } from '../src/runner/kv-sizing.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';
import { deviceWeights } from '../src/runner/weight-bytes.ts';
import { plainRow } from '../test/helpers/sampling-rows.ts';

const args = process.argv.slice(2);
const dir = args[0] ?? 'bench/configs/llama3-8b';
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const BLOCK = 16;
const MAX_SEQS = opt('max-num-seqs', 256);
const MAX_BATCHED = opt('max-num-batched-tokens', 16384);
const REQUESTS = opt('requests', 256);
const dtypeAt = args.indexOf('--dtype');
const DTYPE = dtypeAt >= 0 ? args[dtypeAt + 1] : 'bf16';
if (DTYPE !== 'bf16' && DTYPE !== 'f16') throw new Error(`--dtype ${DTYPE}: expected bf16 or f16`);

let state = 12345;
const rand = () => {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state / 2147483648;
};
const uniform = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

const t0 = performance.now();
const backend = new CudaBackend({
  ...settingsFromEnv().cuda,
  dtype: DTYPE,
  weightBytes: deviceWeights(dir, { dtype: DTYPE, dummy: true }).bytes,
});
const MAX_MODEL_LEN = 2048;
const model: Model = loadDummyModel(dir, backend, { maxModelLen: MAX_MODEL_LEN });
backend.ctx.drv.sync();
console.log(`load ${((performance.now() - t0) / 1000).toFixed(1)} s; ${backend.memoryReport()}`);
const sizing = profileKvBlocks(backend, model, {
  blockSize: BLOCK,
  maxNumBatchedTokens: MAX_BATCHED,
  maxNumSeqs: MAX_SEQS,
  maxModelLen: MAX_MODEL_LEN,
  gpuMemoryUtilization: 0.9,
});
console.log(sizing.report);
const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: sizing.numBlocks, blockSize: BLOCK });
console.log(backend.memoryReport());
const V = model.config.vocabSize;
const freeBlocks = Array.from({ length: sizing.numBlocks }, (_, i) => sizing.numBlocks - 1 - i);

interface Req {
  prompt: number[];
  out: number;
  tokens: number[];
  blocks: number[];
  seed: number;
}

function row(r: Req, temperature: number): SamplingRow {
  return plainRow(temperature, r.seed, r.tokens.length);
}

function step(chunks: ScheduledChunk[], reqs: Req[], temperature: number): void {
  const batch = buildStepBatch(chunks, BLOCK);
  const logits = backend.forwardStep(batch, (s) => model.forward(s, kv));
  const ids = backend.sampleTokens(
    logits,
    reqs.map((r) => row(r, temperature)),
  );
  for (const [i, r] of reqs.entries()) r.tokens.push(ids[i]!);
}

function admit(r: Req): boolean {
  const need = Math.ceil((r.prompt.length + r.out) / BLOCK);
  if (freeBlocks.length < need) return false;
  r.blocks = freeBlocks.splice(freeBlocks.length - need, need);
  return true;
}

const prefillChunk = (r: Req): ScheduledChunk => ({
  tokenIds: r.prompt,
  startPos: 0,
  blockTable: r.blocks,
  logits: 'last',
});
const decodeChunk = (r: Req): ScheduledChunk => ({
  tokenIds: [r.tokens.at(-1)!],
  startPos: r.prompt.length + r.tokens.length - 1,
  blockTable: r.blocks,
  logits: 'last',
});
const newReq = (inLen: number, out: number, i: number): Req => ({
  prompt: Array.from({ length: inLen }, () => uniform(0, V - 1)),
  out,
  tokens: [],
  blocks: [],
  seed: 1000 + i,
});

// Batch-1 decode latency: a 128-token prompt, then 256 greedy tokens one step at a time (graph replay + device
// sampling + the id back to the host: what a user waits for per token).
const results: [string, string, string][] = [];
function batch1(label: string): void {
  const r = newReq(128, 257, 0);
  admit(r);
  step([prefillChunk(r)], [r], 0);
  for (let i = 0; i < 8; i++) step([decodeChunk(r)], [r], 0); // capture + warm-up
  const n = 248;
  const ts = performance.now();
  for (let i = 0; i < n; i++) step([decodeChunk(r)], [r], 0);
  const ms = (performance.now() - ts) / n;
  const gpuMs = streamMillis(backend.ctx.drv, () =>
    backend.forwardStep(buildStepBatch([decodeChunk(r)], BLOCK), (s) => model.forward(s, kv)),
  );
  freeBlocks.push(...r.blocks);
  // The greedy ids' hash: runs that must compute the same thing (PAGODA_PDL=0 and 1) print the same one.
  const idsHash = r.tokens.reduce((h, t) => Math.imul(h ^ t, 16777619) >>> 0, 2166136261).toString(16);
  results.push([
    `batch-1 decode, ms per output token (ctx 128..384), ${label}`,
    ms.toFixed(2),
    `graph replay alone ${gpuMs.toFixed(2)} ms; greedy ids hash ${idsHash}`,
  ]);
  console.log(
    `batch-1 decode (${label}): ${ms.toFixed(3)} ms/token (device time of one replayed step ${gpuMs.toFixed(3)} ms), ids hash ${idsHash}`,
  );
}

// Batch-1 decode latency: a 128-token prompt, then 256 greedy tokens one step at a time (graph replay + device
// sampling + the id back to the host: what a user waits for per token); GEMMs through cuBLASLt, then the GEMV.
backend.linears.gemv = false;
backend.graphs?.clear();
batch1('cuBLASLt GEMMs');
backend.linears.gemv = true;
backend.graphs?.clear();
batch1('GEMV kernel where the table picks it');

/** Runs `reqs` to completion: prefill-first scheduling as nano-vllm does, then decode steps over all running. */
function throughput(label: string, reqs: Req[]): void {
  const waiting = [...reqs];
  let running: Req[] = [];
  let outTokens = 0;
  let prefillSteps = 0;
  let decodeSteps = 0;
  let prefillMs = 0;
  const ts = performance.now();
  while (waiting.length || running.length) {
    const admitted: Req[] = [];
    let tokens = 0;
    while (
      waiting.length &&
      running.length + admitted.length < MAX_SEQS &&
      tokens + waiting[0]!.prompt.length <= MAX_BATCHED &&
      admit(waiting[0]!)
    ) {
      tokens += waiting[0]!.prompt.length;
      admitted.push(waiting.shift()!);
    }
    if (admitted.length) {
      const tp = performance.now();
      step(admitted.map(prefillChunk), admitted, 0.6);
      prefillMs += performance.now() - tp;
      prefillSteps++;
      running.push(...admitted);
    } else {
      step(running.map(decodeChunk), running, 0.6);
      decodeSteps++;
    }
    running = running.filter((r) => {
      if (r.tokens.length < r.out) return true;
      outTokens += r.tokens.length;
      freeBlocks.push(...r.blocks);
      return false;
    });
  }
  const s = (performance.now() - ts) / 1000;
  const tput = outTokens / s;
  results.push([
    `${label}, output tok/s`,
    tput.toFixed(0),
    `${outTokens} output tokens in ${s.toFixed(1)} s; ${prefillSteps} prefill steps (${(prefillMs / 1000).toFixed(1)} s), ${decodeSteps} decode steps`,
  ]);
  console.log(`${label}: ${tput.toFixed(0)} output tok/s (${outTokens} tokens, ${s.toFixed(1)} s)`);
}

const CB_REQUESTS = opt('cb-requests', 32);
const CB_OUT = opt('cb-out', 256);
if (CB_REQUESTS > 0) {
  const reqs = Array.from({ length: CB_REQUESTS }, (_, i) => newReq(uniform(100, 1024), CB_OUT, i));
  throughput(`continuous batching, ${CB_REQUESTS} requests, in 100..1024, out ${CB_OUT}`, reqs);
}
if (REQUESTS > 0) {
  const reqs = Array.from({ length: REQUESTS }, (_, i) => newReq(uniform(100, 1024), uniform(100, 1024), i));
  throughput(`offline throughput, ${REQUESTS} requests, in/out uniform 100..1024 (nano-vllm)`, reqs);
}

console.log(
  `graphs: ${backend.graphs?.stats.captures} captured in ${backend.graphs?.stats.captureMs.toFixed(0)} ms (warm-up steps included), ${backend.graphs?.stats.replays} replays`,
);
const pdl = backend.ctx.drv.pdl ? 'PDL on' : `PDL off${backend.ctx.drv.pdlAvailable ? '' : ' (unavailable)'}`;
console.log(
  `\n| ${backend.ctx.drv.info.name} | pagoda (${DTYPE}, dummy ${model.config.architecture}, ${pdl}) | notes |\n|---|---|---|`,
);
for (const [what, v, note] of results) console.log(`| ${what} | ${v} | ${note} |`);
