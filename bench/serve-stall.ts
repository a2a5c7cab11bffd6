/**
 * Whether large prompts stall the server: several requests with multi-megabyte prompts in flight at once (four of
 * 3.9 MB, as in the probe that found the stall) while `/health` is polled every 10 ms. First with prompts over the
 * model's character bound (refused before they are tokenized), then with prompts just under it (tokenized in the
 * worker thread); last, what encoding one such prompt inline costs: how long every other request would wait if it
 * ran on the event loop.
 * Usage: npx tsx bench/serve-stall.ts [model-dir] [--mb 3.9] [--requests 4]   (default: the tiny-llama fixture)
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { markdownTable } from '../src/util/markdown.ts';
import { root, serveBenchArgs, startBenchServer } from './serve-bench.ts';

const { modelDir, flag } = serveBenchArgs(process.argv.slice(2));
const MEGABYTES = flag('--mb', 3.9);
const REQUESTS = flag('--requests', 4);

const server = await startBenchServer(modelDir, { bodyLimitBytes: Math.ceil(MEGABYTES * 2 ** 20 * 1.1) + 4096 });
const { name, url } = server;
const { tokenizer, contextLength } = server.model;
const span = tokenizer.maxCharsPerToken ?? null;
/** Prompts are prose, which tokenizes at a realistic rate (one repeated character would not). */
const PROSE = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ';

/**
 * Sends `REQUESTS` completions with prompts of `chars` characters at once, from a worker thread so that building
 * and uploading the bodies does not load the server's thread; resolves with their statuses.
 */
function sendFromWorker(chars: number): Promise<number[]> {
  const code = `
    const { parentPort, workerData: w } = require('node:worker_threads');
    Promise.all(Array.from({ length: w.requests }, async (_, i) => {
      const prompt = (i + ' ' + w.prose.repeat(w.chars / w.prose.length + 1)).slice(0, w.chars);
      const body = JSON.stringify({ model: w.name, prompt, max_tokens: 1 });
      const res = await fetch(w.url + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.text();
      return res.status;
    })).then((statuses) => parentPort.postMessage(statuses));`;
  const worker = new Worker(code, { eval: true, workerData: { url, name, chars, requests: REQUESTS, prose: PROSE } });
  return new Promise((resolve, reject) => {
    worker.once('message', (statuses: number[]) => {
      resolve(statuses);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;

/** The prompts in flight while /health is polled every 10 ms until every one is answered. */
async function inFlight(label: string, chars: number): Promise<string[]> {
  const health: number[] = [];
  let statuses: number[] | null = null;
  const t0 = performance.now();
  const sent = sendFromWorker(chars).then((s) => {
    statuses = s;
  });
  while (statuses === null) {
    const start = performance.now();
    await (await fetch(`${url}/health`)).text();
    health.push(performance.now() - start);
    await new Promise((r) => setTimeout(r, 10));
  }
  await sent;
  const all = (performance.now() - t0).toFixed(0);
  const counts = new Map<number, number>();
  for (const s of statuses as number[]) counts.set(s, (counts.get(s) ?? 0) + 1);
  const answers = [...counts].map(([status, n]) => `${n} x ${status}`).join(', ');
  const p50 = pct(health, 50).toFixed(1);
  return [
    label,
    String(chars),
    String(REQUESTS),
    answers,
    all,
    String(health.length),
    p50,
    Math.max(...health).toFixed(1),
  ];
}

const big = Math.round(MEGABYTES * 1e6);
const bound = span === null ? null : (contextLength - 1) * span;
const rows: string[][] = [];
rows.push(
  await inFlight(
    bound !== null && big > bound ? 'over the bound: refused before tokenizing' : 'no bound: tokenized in the worker',
    big,
  ),
);
if (bound !== null) rows.push(await inFlight('just under the bound: tokenized in the worker', Math.min(big, bound)));
const t0 = performance.now();
tokenizer.encode(PROSE.repeat(big / PROSE.length + 1).slice(0, big));
const inline = (performance.now() - t0).toFixed(0);
rows.push(['one prompt encoded inline (the stall it would cause)', String(big), '1', '-', inline, '-', '-', '-']);
await server.close();

const table = markdownTable(
  ['case', 'prompt chars', 'requests', 'answers', 'all answered ms', '/health polls', '/health p50 ms', 'max ms'],
  rows,
);
console.log(table);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}`;
appendFileSync(
  join(root, 'bench/RESULTS.md'),
  `\n## Large prompts and /health (CPU) — ${new Date().toISOString()}\n\nMachine: ${machine}. Command: \`npx tsx bench/serve-stall.ts ${process.argv.slice(2).join(' ')}\`.\n` +
    `Model ${name}: context ${contextLength} tokens, at most ${span ?? 'unknown'} characters per token, so prompts over ` +
    `${bound ?? 'no bound'} characters are refused before tokenizing. /health is polled every 10 ms while the requests are in flight.\n\n` +
    `${table}\n`,
);
