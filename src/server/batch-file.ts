import { randomUUID } from 'node:crypto';

/**
 * The routes a batch line may name: the OpenAI Batch API's and vLLM's run-batch's (score and rerank under any of the
 * paths the server answers them on).
 */
export const BATCH_URLS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/score',
  '/score',
  '/v1/rerank',
  '/rerank',
  '/v2/rerank',
];

/** One line of a batch's output, as OpenAI's Batch API and vLLM's run-batch write it. */
export interface BatchOutputLine {
  id: string;
  custom_id: string | null;
  /** The route's answer (an error's body too), or null when the line never reached a route. */
  response: { status_code: number; request_id: string; body: unknown } | null;
  /** Why the line never reached a route (not JSON, no custom_id, an unsupported URL, a stream), else null. */
  error: { code: string; message: string } | null;
}

/** A route's answer to one request: its status and its JSON body (or text, when it is not JSON). */
export type BatchSend = (url: string, body: Record<string, unknown>) => Promise<{ status: number; body: unknown }>;

export interface BatchCounts {
  requests: number;
  /** Lines answered with a 2xx. */
  succeeded: number;
  failed: number;
}

const newId = (prefix: string) => `${prefix}${randomUUID().replaceAll('-', '')}`;

/**
 * A request of line `n`, or the output line that says why it is none. `seen` holds the line of each custom_id so far:
 * the Batch API's ids are unique, so a repeated one is answered with an error rather than run twice.
 */
function readLine(
  text: string,
  n: number,
  seen: Map<string, number>,
): { custom_id: string; url: string; body: Record<string, unknown> } | BatchOutputLine {
  const refuse = (custom_id: string | null, message: string): BatchOutputLine => ({
    id: newId('batch_req_'),
    custom_id,
    response: null,
    error: { code: 'invalid_request', message: `line ${n}: ${message}` },
  });
  let line: unknown;
  try {
    line = JSON.parse(text);
  } catch (err) {
    return refuse(null, `not JSON (${(err as Error).message})`);
  }
  if (typeof line !== 'object' || line === null || Array.isArray(line)) return refuse(null, 'expected a JSON object');
  const { custom_id, method, url, body } = line as Record<string, unknown>;
  if (typeof custom_id !== 'string') return refuse(null, 'custom_id: expected a string');
  const first = seen.get(custom_id);
  if (first !== undefined)
    return refuse(custom_id, `custom_id ${JSON.stringify(custom_id)}: already used on line ${first}`);
  seen.set(custom_id, n);
  if (method !== 'POST') return refuse(custom_id, `method: expected "POST", got ${JSON.stringify(method)}`);
  if (typeof url !== 'string' || !BATCH_URLS.includes(url)) {
    return refuse(custom_id, `url ${JSON.stringify(url)}: expected one of ${BATCH_URLS.join(', ')}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return refuse(custom_id, 'body: expected a JSON object');
  }
  if ((body as Record<string, unknown>).stream === true) {
    return refuse(custom_id, 'body.stream: a batch answers whole (remove "stream": true)');
  }
  return { custom_id, url, body: body as Record<string, unknown> };
}

/**
 * Runs a batch file's requests (JSON lines: custom_id, method, url, body) through `send`, at most `concurrency` at
 * once so the engine batches them, and writes one output line per input line, in the input's order, as soon as it
 * and every line before it are answered. A line that is not a request gets an output line saying why; nothing stops
 * the batch but the input ending or a write failing (its error is thrown once the requests in flight are answered).
 */
export async function runBatchFile(
  lines: AsyncIterable<string>,
  send: BatchSend,
  write: (line: string) => Promise<void> | void,
  concurrency: number,
  onAnswered: (counts: BatchCounts) => void = () => {},
): Promise<BatchCounts> {
  const counts: BatchCounts = { requests: 0, succeeded: 0, failed: 0 };
  const done = new Map<number, BatchOutputLine>();
  let nextToWrite = 0;
  let writing = Promise.resolve();
  let writeFailed = false;
  const finish = (index: number, out: BatchOutputLine) => {
    const status = out.response?.status_code;
    if (status !== undefined && status >= 200 && status < 300) counts.succeeded++;
    else counts.failed++;
    onAnswered(counts);
    done.set(index, out);
    // Writes stay in order: each waits for the one before it.
    writing = writing.then(async () => {
      for (let next = done.get(nextToWrite); next; next = done.get(nextToWrite)) {
        done.delete(nextToWrite++);
        await write(`${JSON.stringify(next)}\n`);
      }
    });
    writing.catch(() => {
      writeFailed = true;
    });
  };

  const inFlight = new Set<Promise<void>>();
  const seen = new Map<string, number>();
  let n = 0;
  for await (const raw of lines) {
    if (writeFailed) break;
    const lineNo = ++n;
    if (!raw.trim()) continue;
    const index = counts.requests++;
    const request = readLine(raw, lineNo, seen);
    if ('response' in request) {
      finish(index, request);
      continue;
    }
    const running = (async () => {
      let out: BatchOutputLine;
      try {
        const answer = await send(request.url, request.body);
        out = {
          id: newId('batch_req_'),
          custom_id: request.custom_id,
          response: { status_code: answer.status, request_id: newId('req_'), body: answer.body },
          error: null,
        };
      } catch (err) {
        out = {
          id: newId('batch_req_'),
          custom_id: request.custom_id,
          response: null,
          error: { code: 'internal_error', message: `line ${lineNo}: ${(err as Error).message}` },
        };
      }
      finish(index, out);
    })();
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await writing;
  return counts;
}
