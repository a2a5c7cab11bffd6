/**
 * CPU decode throughput: greedy decoding one token per step through the paged KV cache.
 * Usage: npx tsx bench/cpu-decode.ts [model-dir...]   (default: stories260K from the shared fixtures and the demo model)
 * With PAGODA_QUANTIZATION=q8_0 (or any --quantization type), each model is also run quantized at load.
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { defaultThreads } from '../src/backend/cpu/threads.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { ensureDemoModel } from '../src/loader/demo-model.ts';
import { loadModel } from '../src/models/load.ts';
import type { Model } from '../src/models/model.ts';
import { parseQuantization } from '../src/primitives/quant/mix.ts';
import { buildStepBatch } from '../src/runner/step-batch.ts';

const BLOCK_SIZE = 16;
const PROMPT_TOKENS = 32;
const DECODE_TOKENS = 64;
/** Each configuration runs this many times and reports its best run: the machine may be shared. */
const REPEATS = 3;

interface Row {
  model: string;
  threads: number;
  params: string;
  batch: number;
  prefillTokS: number;
  decodeTokS: number;
  msPerStep: number;
}

/** Greedy decode of `batch` sequences in lockstep; returns prefill and decode rates. */
function run(model: Model, name: string, batch: number): Row {
  const backend = model.backend;
  const blocksPerSeq = Math.ceil((PROMPT_TOKENS + DECODE_TOKENS) / BLOCK_SIZE);
  const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: batch * blocksPerSeq, blockSize: BLOCK_SIZE });
  const tables = Array.from({ length: batch }, (_, s) =>
    Array.from({ length: blocksPerSeq }, (_, b) => s * blocksPerSeq + b),
  );
  const vocab = model.config.vocabSize;
  const step = (tokens: number[][], start: number): number[] => {
    const chunks = tokens.map((ids, s) => ({
      tokenIds: ids,
      startPos: start,
      blockTable: tables[s]!,
      logits: 'last' as const,
    }));
    const logits = backend.toHost(model.forward(backend.beginStep(buildStepBatch(chunks, BLOCK_SIZE)), kv));
    return tokens.map((_, s) => {
      let best = 0;
      for (let i = 1; i < vocab; i++) if (logits[s * vocab + i]! > logits[s * vocab + best]!) best = i;
      return best;
    });
  };
  const prompt = Array.from({ length: batch }, (_, s) =>
    Array.from({ length: PROMPT_TOKENS }, (_, i) => (i * 7 + s) % vocab),
  );
  let t0 = performance.now();
  let next = step(prompt, 0);
  const prefillMs = performance.now() - t0;
  t0 = performance.now();
  for (let i = 0; i < DECODE_TOKENS - 1; i++)
    next = step(
      next.map((id) => [id]),
      PROMPT_TOKENS + i,
    );
  const decodeMs = performance.now() - t0;
  const params = paramCount(model);
  return {
    model: name,
    threads: (backend as CpuBackend).threads,
    params: params >= 1e6 ? `${(params / 1e6).toFixed(1)}M` : `${(params / 1e3).toFixed(0)}K`,
    batch,
    prefillTokS: (batch * PROMPT_TOKENS) / (prefillMs / 1000),
    decodeTokS: (batch * (DECODE_TOKENS - 1)) / (decodeMs / 1000),
    msPerStep: decodeMs / (DECODE_TOKENS - 1),
  };
}

/** Parameters implied by the config (embeddings counted once when tied). */
function paramCount(model: Model): number {
  const c = model.config;
  const attn = c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads);
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  return c.numLayers * (attn + mlp) + c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const dirs: string[] = args.length
  ? args
  : [
      join(process.env.PAGODA_FIXTURES ?? join(root, '..', 'shared', 'fixtures'), 'models', 'stories260K'),
      ensureDemoModel(),
    ].filter((d) => existsSync(d));

const env = settingsFromEnv();
const quantized = env.quantization ? parseQuantization(env.quantization, 'PAGODA_QUANTIZATION') : undefined;
const rows: Row[] = [];
for (const dir of dirs) {
  for (const [threads, quantization] of [1, env.cpuThreads ?? defaultThreads()]
    .filter((t, i, all) => all.indexOf(t) === i)
    .flatMap((t) => (quantized ? [[t, undefined] as const, [t, quantized] as const] : [[t, undefined] as const]))) {
    const model = loadModel(dir, new CpuBackend({ threads }), { quantization });
    const name = quantization ? `${basename(dir)} ${quantization.name}` : basename(dir);
    run(model, name, 1); // warm-up: lets the JIT compile the hot loops
    for (const batch of [1, 8]) {
      const runs = Array.from({ length: REPEATS }, () => run(model, name, batch));
      rows.push({
        ...runs[0]!,
        prefillTokS: Math.max(...runs.map((r) => r.prefillTokS)),
        decodeTokS: Math.max(...runs.map((r) => r.decodeTokS)),
        msPerStep: Math.min(...runs.map((r) => r.msPerStep)),
      });
    }
  }
}

/** A markdown table with padded columns (the layout the formatter keeps). */
function table(head: string[], body: string[][]): string[] {
  const widths = head.map((h, c) => Math.max(h.length, 3, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
}

const lines = table(
  ['model', 'params', 'threads', 'batch', 'prefill tok/s', 'decode tok/s', 'ms/step'],
  rows.map((r) => [
    r.model,
    r.params,
    String(r.threads),
    String(r.batch),
    r.prefillTokS.toFixed(0),
    r.decodeTokS.toFixed(1),
    r.msPerStep.toFixed(2),
  ]),
);
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const command =
  `${quantized ? `PAGODA_QUANTIZATION=${env.quantization} ` : ''}npx tsx bench/cpu-decode.ts ${args.join(' ')}`.trim();
const section = [
  `## CPU decode — ${new Date().toISOString()}`,
  '',
  `Machine: ${cpu} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}. Command: \`${command}\`.`,
  `Prompt ${PROMPT_TOKENS} tokens, then ${DECODE_TOKENS} greedy tokens one step at a time, block size ${BLOCK_SIZE}; best of ${REPEATS} runs.`,
  '',
  ...lines,
  '',
].join('\n');
console.log(lines.join('\n'));
appendFileSync(join(root, 'bench', 'RESULTS.md'), `\n${section}`);
