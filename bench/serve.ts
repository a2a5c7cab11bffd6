/**
 * Serving overhead: the same concurrent workload run on the engine directly and through `pagoda serve`'s HTTP APIs
 * (OpenAI SSE and Ollama NDJSON, streamed, in the same process), to show what the server layer costs.
 * Usage: npx tsx bench/serve.ts [model-dir] [--requests N] [--max-tokens N]   (default: the tiny-llama fixture)
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { root, serveBenchArgs, startBenchServer } from './serve-bench.ts';

const { modelDir, flag } = serveBenchArgs(process.argv.slice(2));
const REQUESTS = flag('--requests', 64);
const MAX_TOKENS = flag('--max-tokens', 64);

const server = await startBenchServer(modelDir);
const { name, url } = server;
const { engine, tokenizer } = server.model;

interface Result {
  path: string;
  seconds: number;
  tokens: number;
  ttft: number[];
}

const prompt = (i: number) => `Request number ${i}: once upon a time`;

async function direct(): Promise<Result> {
  const ttft: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: REQUESTS }, async (_, i) => {
      const start = performance.now();
      let first = true;
      const params = { maxTokens: MAX_TOKENS, ignoreEos: true, temperature: 0 };
      for await (const out of engine.generate({ prompt: tokenizer.encode(prompt(i)), params })) {
        for (const d of out.outputs) tokens += d.tokenIds.length;
        if (first && out.outputs.some((d) => d.tokenIds.length)) {
          ttft.push(performance.now() - start);
          first = false;
        }
      }
    }),
  );
  return { path: 'engine.generate (no HTTP)', seconds: (performance.now() - t0) / 1000, tokens, ttft };
}

async function overHttp(kind: 'openai' | 'ollama'): Promise<Result> {
  const ttft: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: REQUESTS }, async (_, i) => {
      const start = performance.now();
      const body =
        kind === 'openai'
          ? {
              model: name,
              prompt: prompt(i),
              max_tokens: MAX_TOKENS,
              ignore_eos: true,
              temperature: 0,
              stream: true,
              stream_options: { include_usage: true },
            }
          : { model: name, prompt: prompt(i), raw: true, options: { num_predict: MAX_TOKENS, temperature: 0 } };
      const res = await fetch(`${url}${kind === 'openai' ? '/v1/completions' : '/api/generate'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const decoder = new TextDecoder();
      let text = '';
      let first = true;
      for await (const chunk of res.body!) {
        if (first) {
          ttft.push(performance.now() - start);
          first = false;
        }
        text += decoder.decode(chunk, { stream: true });
      }
      const m = kind === 'openai' ? /"completion_tokens":(\d+)/.exec(text) : /"eval_count":(\d+)/.exec(text);
      tokens += Number(m?.[1] ?? 0);
    }),
  );
  const path = kind === 'openai' ? 'POST /v1/completions (SSE)' : 'POST /api/generate (NDJSON)';
  return { path, seconds: (performance.now() - t0) / 1000, tokens, ttft };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? 0;

await direct(); // warm-up
const results: Result[] = [];
for (const run of [direct, () => overHttp('openai'), () => overHttp('ollama'), direct]) results.push(await run());
await server.close();

const header =
  '| path | requests | output tokens | seconds | output tok/s | first chunk p50 ms | p99 ms |\n|---|---|---|---|---|---|---|';
const rows = results.map(
  (r) =>
    `| ${r.path} | ${REQUESTS} | ${r.tokens} | ${r.seconds.toFixed(2)} | ${(r.tokens / r.seconds).toFixed(0)} | ${pct(r.ttft, 50).toFixed(1)} | ${pct(r.ttft, 99).toFixed(1)} |`,
);
const table = [header, ...rows].join('\n');
console.log(table);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}`;
appendFileSync(
  join(root, 'bench/RESULTS.md'),
  `\n## Serving overhead (CPU) — ${new Date().toISOString()}\n\nMachine: ${machine}. Command: \`npx tsx bench/serve.ts ${process.argv.slice(2).join(' ')}\`.\n` +
    `Model ${name}; ${REQUESTS} concurrent streamed requests of ${MAX_TOKENS} tokens (greedy, EOS ignored), in one process; ` +
    'the engine-direct run is repeated last to show the drift between runs. The HTTP client runs in the same process ' +
    '(on the same cores), so the HTTP rows include the client parsing the streams; Ollama has no ignore_eos, so its ' +
    'requests may stop early.\n\n' +
    `${table}\n`,
);
