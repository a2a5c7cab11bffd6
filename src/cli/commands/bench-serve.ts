import { Command } from 'commander';
import { UserError } from '../../util/errors.ts';
import { atLeast, printRows, saveFile } from '../bench/flags.ts';
import { appendBenchResult, benchCommand } from '../bench/results.ts';
import { buildPrompts, runServeBench, type ServeWorkload, serveRows } from '../bench/serve.ts';
import { parseIntFlag } from '../engine-options.ts';
import { askServer, serverUrl } from '../server-url.ts';

/**
 * `pagoda bench serve`: vLLM's `bench serve` on its random dataset against a running OpenAI-compatible server (pagoda,
 * vLLM or any other with /tokenize): requests at a rate, streamed, with TTFT, TPOT, ITL and end-to-end latency.
 */
export function serveBenchCommand(): Command {
  return new Command('serve')
    .description("a running server under load, as vLLM's bench serve (random prompts; TTFT, TPOT, ITL)")
    .option('--base-url <url>', 'the server (default: $PAGODA_HOST or $OLLAMA_HOST, else http://127.0.0.1:11434)')
    .option('--model <name>', 'the served model (default: the first /v1/models lists)')
    .option('--endpoint <path>', '/v1/completions (token-id prompts) or /v1/chat/completions', '/v1/completions')
    .option('--num-prompts <n>', 'requests to send', '200')
    .option('--random-input-len <n>', 'prompt tokens per request', '1024')
    .option('--random-output-len <n>', 'output tokens per request (max_tokens)', '128')
    .option('--random-range-ratio <r>', 'lengths uniform within ± this fraction of the above (0 <= r < 1)', '0')
    .option('--request-rate <r>', 'requests a second (inf: all at once)', 'inf')
    .option('--burstiness <b>', 'arrival regularity: 1 Poisson, below 1 burstier, above 1 steadier', '1')
    .option('--max-concurrency <n>', 'requests in flight at most (default: no limit)')
    .option('--ignore-eos', 'generate max_tokens whatever the model says (both servers honour ignore_eos)')
    .option('--seed <n>', 'seed of the prompts and the arrivals', '0')
    .option('--save <file>', 'also append the result (date, machine, command, table) to this markdown file')
    .action(async (opts: Record<string, unknown>) => {
      const save = saveFile(opts);
      const baseUrl = String(opts.baseUrl ?? serverUrl()).replace(/\/+$/, '');
      const w: ServeWorkload = {
        baseUrl,
        model: '',
        endpoint: endpointFrom(String(opts.endpoint)),
        numPrompts: atLeast(opts.numPrompts, '--num-prompts', 1),
        inputLen: atLeast(opts.randomInputLen, '--random-input-len', 1),
        outputLen: atLeast(opts.randomOutputLen, '--random-output-len', 1),
        rangeRatio: fraction(opts.randomRangeRatio, '--random-range-ratio'),
        requestRate: rate(String(opts.requestRate)),
        burstiness: positive(opts.burstiness, '--burstiness'),
        maxConcurrency:
          opts.maxConcurrency === undefined
            ? Number.POSITIVE_INFINITY
            : atLeast(opts.maxConcurrency, '--max-concurrency', 1),
        ignoreEos: opts.ignoreEos === true,
        seed: parseIntFlag(String(opts.seed), '--seed'),
        apiKey: process.env.PAGODA_API_KEY || process.env.OPENAI_API_KEY || undefined,
      };
      w.model = opts.model === undefined ? await firstModel(w) : String(opts.model);
      const prompts = await buildPrompts(w);
      process.stderr.write(
        `${w.numPrompts} requests to ${baseUrl}${w.endpoint} (model ${w.model}), input ${w.inputLen}, output ${w.outputLen} tokens, rate ${w.requestRate} req/s\n`,
      );
      const r = await runServeBench(w, prompts);
      const failed = r.requests.find((q) => !q.ok);
      if (failed)
        process.stderr.write(`${r.requests.filter((q) => !q.ok).length} requests failed; the first: ${failed.error}\n`);
      const rows = serveRows(r);
      printRows(rows);
      if (save === undefined) return;
      appendBenchResult(
        save,
        {
          name: 'serve',
          deviceName: `the server at ${baseUrl}`,
          remote: true,
          command: benchCommand('serve'),
          about: `model ${w.model}; ${w.numPrompts} random prompts of ${w.inputLen} tokens, ${w.outputLen} out, rate ${w.requestRate}, concurrency ${w.maxConcurrency}${w.ignoreEos ? ', ignore_eos' : ''}`,
        },
        rows.map(([label]) => label),
        [rows.map(([, value]) => value)],
      );
    });
}

function endpointFrom(v: string): ServeWorkload['endpoint'] {
  if (v === '/v1/completions' || v === '/v1/chat/completions') return v;
  throw new UserError(`--endpoint ${v}: expected /v1/completions or /v1/chat/completions`);
}

function rate(v: string): number {
  if (v === 'inf') return Number.POSITIVE_INFINITY;
  const r = Number(v);
  if (!(r > 0)) throw new UserError(`--request-rate ${v}: expected a positive number of requests a second, or inf`);
  return r;
}

function positive(v: unknown, flag: string): number {
  const x = Number(v);
  if (!(x > 0)) throw new UserError(`${flag} ${v}: expected a positive number`);
  return x;
}

function fraction(v: unknown, flag: string): number {
  const x = Number(v);
  if (!(x >= 0 && x < 1)) throw new UserError(`${flag} ${v}: expected a number with 0 <= r < 1`);
  return x;
}

/** The first model the server lists (GET /v1/models). */
async function firstModel(w: ServeWorkload): Promise<string> {
  const listed = (await askServer(w.baseUrl, '/v1/models', undefined, { apiKey: w.apiKey })) as {
    data?: { id: string }[];
  };
  const id = listed.data?.[0]?.id;
  if (!id) throw new UserError(`${w.baseUrl}/v1/models lists no model: pass --model`);
  return id;
}
