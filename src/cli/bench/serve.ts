import { Rng } from '../../engine/sequence.ts';
import { UserError } from '../../util/errors.ts';
import { askServer, authHeaders } from '../server-url.ts';
import { quantile } from './latency.ts';

/** vLLM's `bench serve` workload on its random dataset: what is sent, how fast, how many at once. */
export interface ServeWorkload {
  baseUrl: string;
  model: string;
  /** /v1/completions (token-id prompts) or /v1/chat/completions (their text as one user message). */
  endpoint: '/v1/completions' | '/v1/chat/completions';
  numPrompts: number;
  inputLen: number;
  outputLen: number;
  /** Lengths drawn uniformly within ± this fraction of inputLen and outputLen (vLLM's random-range-ratio). */
  rangeRatio: number;
  /** Requests a second, arrivals a gamma process (Poisson at burstiness 1); Infinity sends them all at once. */
  requestRate: number;
  burstiness: number;
  /** Requests in flight at most (Infinity: no limit). */
  maxConcurrency: number;
  ignoreEos: boolean;
  seed: number;
  apiKey?: string;
}

/** One request's timings (milliseconds from its send) and counts. */
export interface RequestTiming {
  ok: boolean;
  error?: string;
  promptTokens: number;
  outputTokens: number;
  ttftMs: number;
  e2eMs: number;
  /** Gaps between the chunks that carried text after the first. */
  itlMs: number[];
}

export interface ServeResult {
  seconds: number;
  requests: RequestTiming[];
}

/**
 * Prompts of random token ids taken from the server's own vocabulary (ids of random words through its /tokenize, as
 * both vLLM and pagoda answer it), so every id is one the model knows; chat prompts are their text (/detokenize).
 */
export async function buildPrompts(w: ServeWorkload): Promise<{ prompt: number[] | string; outputLen: number }[]> {
  const rng = new Rng(w.seed, 0);
  const words = Array.from({ length: 2048 }, () => WORDS[Math.floor(rng.next() * WORDS.length)]).join(' ');
  const pool = [
    ...new Set(
      (
        (await askServer(
          w.baseUrl,
          '/tokenize',
          { model: w.model, prompt: words, add_special_tokens: false },
          { apiKey: w.apiKey },
        )) as {
          tokens: number[];
        }
      ).tokens,
    ),
  ];
  if (pool.length === 0) throw new UserError(`${w.baseUrl}/tokenize gave no tokens for the prompt text`);
  const length = (n: number) => Math.max(1, Math.round(n * (1 - w.rangeRatio) + rng.next() * 2 * n * w.rangeRatio));
  const prompts: { prompt: number[] | string; outputLen: number }[] = [];
  for (let i = 0; i < w.numPrompts; i++) {
    const ids = Array.from({ length: length(w.inputLen) }, () => pool[Math.floor(rng.next() * pool.length)]!);
    const prompt =
      w.endpoint === '/v1/completions'
        ? ids
        : (
            (await askServer(w.baseUrl, '/detokenize', { model: w.model, tokens: ids }, { apiKey: w.apiKey })) as {
              prompt: string;
            }
          ).prompt;
    prompts.push({ prompt, outputLen: length(w.outputLen) });
  }
  return prompts;
}

/** Sends the prompts as the workload says and times every streamed answer. */
export async function runServeBench(
  w: ServeWorkload,
  prompts: { prompt: number[] | string; outputLen: number }[],
): Promise<ServeResult> {
  const rng = new Rng(w.seed, 1);
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const start = performance.now();
  const runs: Promise<RequestTiming>[] = [];
  for (const p of prompts) {
    while (inFlight >= w.maxConcurrency) await new Promise<void>((r) => waiting.push(r));
    inFlight++;
    runs.push(
      timedRequest(w, p).finally(() => {
        inFlight--;
        waiting.shift()?.();
      }),
    );
    if (Number.isFinite(w.requestRate)) {
      await new Promise((r) => setTimeout(r, gammaInterval(rng, w.requestRate, w.burstiness) * 1000));
    }
  }
  const requests = await Promise.all(runs);
  return { seconds: (performance.now() - start) / 1000, requests };
}

/** The summary vLLM's `bench serve` prints, as label and value rows. */
export function serveRows(r: ServeResult): [string, string][] {
  const ok = r.requests.filter((q) => q.ok);
  const input = ok.reduce((s, q) => s + q.promptTokens, 0);
  const output = ok.reduce((s, q) => s + q.outputTokens, 0);
  const tpot = ok.filter((q) => q.outputTokens > 1).map((q) => (q.e2eMs - q.ttftMs) / (q.outputTokens - 1));
  const stats = (name: string, xs: number[]): [string, string][] => [
    [`mean ${name} ms`, fixed(xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : Number.NaN)],
    [`median ${name} ms`, fixed(xs.length ? quantile(xs, 0.5) : Number.NaN)],
    [`p99 ${name} ms`, fixed(xs.length ? quantile(xs, 0.99) : Number.NaN)],
  ];
  return [
    ['successful requests', String(ok.length)],
    ['failed requests', String(r.requests.length - ok.length)],
    ['duration s', r.seconds.toFixed(2)],
    ['input tokens', String(input)],
    ['generated tokens', String(output)],
    ['requests/s', (ok.length / r.seconds).toFixed(2)],
    ['output tokens/s', (output / r.seconds).toFixed(1)],
    ['total tokens/s', ((input + output) / r.seconds).toFixed(1)],
    ...stats(
      'TTFT',
      ok.map((q) => q.ttftMs),
    ),
    ...stats('TPOT', tpot),
    ...stats(
      'ITL',
      ok.flatMap((q) => q.itlMs),
    ),
    ...stats(
      'E2EL',
      ok.map((q) => q.e2eMs),
    ),
  ];
}

const fixed = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

/** One streamed request: its first text chunk's time, the gaps after it, its usage from the last chunk. */
async function timedRequest(
  w: ServeWorkload,
  p: { prompt: number[] | string; outputLen: number },
): Promise<RequestTiming> {
  const chat = w.endpoint === '/v1/chat/completions';
  const body = {
    model: w.model,
    ...(chat ? { messages: [{ role: 'user', content: p.prompt }] } : { prompt: p.prompt }),
    max_tokens: p.outputLen,
    temperature: 0,
    ignore_eos: w.ignoreEos,
    stream: true,
    stream_options: { include_usage: true },
  };
  const timing: RequestTiming = { ok: false, promptTokens: 0, outputTokens: 0, ttftMs: 0, e2eMs: 0, itlMs: [] };
  const sent = performance.now();
  let last = 0;
  let chunks = 0;
  try {
    const res = await fetch(`${w.baseUrl}${w.endpoint}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders(w.apiKey) },
      body: JSON.stringify(body),
    });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(bytes, { stream: true });
      let end = buffered.indexOf('\n');
      for (; end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end).trim();
        buffered = buffered.slice(end + 1);
        if (!line.startsWith('data:') || line === 'data: [DONE]') continue;
        const event = JSON.parse(line.slice(5)) as StreamEvent;
        if (event.error) throw new Error(event.error.message);
        if (event.usage) {
          timing.promptTokens = event.usage.prompt_tokens;
          timing.outputTokens = event.usage.completion_tokens;
        }
        const c = event.choices?.[0];
        const text = c?.text ?? c?.delta?.content ?? c?.delta?.reasoning_content ?? '';
        if (!text) continue;
        const now = performance.now() - sent;
        if (chunks === 0) timing.ttftMs = now;
        else timing.itlMs.push(now - last);
        last = now;
        chunks++;
      }
    }
    timing.e2eMs = performance.now() - sent;
    // A server that sends no usage: each text chunk counted as a token.
    if (timing.outputTokens === 0) timing.outputTokens = chunks;
    timing.ok = chunks > 0;
    if (!timing.ok) timing.error = 'the answer had no text';
  } catch (err) {
    timing.error = (err as Error).message;
  }
  return timing;
}

interface StreamEvent {
  error?: { message: string };
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  choices?: { text?: string; delta?: { content?: string | null; reasoning_content?: string | null } }[];
}

/**
 * Seconds to the next arrival: gamma with shape `burstiness` and mean 1 / rate (vLLM's arrivals; exponential, i.e.
 * Poisson, at burstiness 1). Marsaglia and Tsang's method; shapes below 1 through the boost u^(1/shape).
 */
export function gammaInterval(rng: Rng, rate: number, burstiness: number): number {
  const shape = burstiness;
  const scale = 1 / (rate * burstiness);
  const boost = shape < 1 ? rng.next() ** (1 / shape) : 1;
  const d = (shape < 1 ? shape + 1 : shape) - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(rng);
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale * boost;
  }
}

function normal(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Plain words whose ids the server's tokenizer gives; the prompts are random picks of those ids. */
const WORDS = (
  'time year people way day man thing woman life child world school state family student group country problem ' +
  'hand part place case week company system program question work government number night point home water room ' +
  'mother area money story fact month lot right study book eye job word business issue side kind head house ' +
  'service friend father power hour game line end member law car city community name president team minute idea ' +
  'kid body information back parent face others level office door health person art war history party result ' +
  'change morning reason research girl guy moment air teacher force education river mountain garden light sound'
).split(' ');
