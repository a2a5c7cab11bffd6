import http from 'node:http';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { buildApp } from '../../src/server/app.ts';
import { resolveServeConfig, type ServeConfig } from '../../src/server/config.ts';
import type { ServerContext } from '../../src/server/generation.ts';
import { type ModelEntry, ModelRegistry, type ModelSource } from '../../src/server/models.ts';

export interface TestServer {
  url: string;
  ctx: ServerContext;
  close(): Promise<void>;
}

/** Starts the HTTP app on a free localhost port with the given models. */
export async function startTestServer(
  source: ModelSource,
  entries: ModelEntry[],
  overrides: Partial<ServeConfig> = {},
  log: Logger = pino({ level: 'silent' }),
): Promise<TestServer> {
  const config = { ...resolveServeConfig({}, {}), port: 0, ...overrides };
  const registry = new ModelRegistry(entries, source, {
    maxLoaded: config.maxLoadedModels,
    keepAliveMs: config.keepAliveMs,
  });
  const { app, ctx } = buildApp(config, registry, log, '0.0.0-test');
  await app.listen({ host: config.host, port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    ctx,
    async close() {
      // Clients' pooled keep-alive sockets would otherwise hold the close open for their idle timeout.
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      await registry.shutdown();
    },
  };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown>;
}

/** Sends a request with node:http (bodies may be any bytes) and returns status, headers, text and parsed JSON. */
export function request(
  url: string,
  opts: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const { body } = opts;
  const payload =
    body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? (payload === undefined ? 'GET' : 'POST'),
        // node sends a DELETE body with neither length nor chunking unless told its length.
        headers: {
          'content-type': 'application/json',
          ...(payload === undefined ? {} : { 'content-length': String(Buffer.byteLength(payload)) }),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(url, { method: 'POST', body, headers });

/** Waits until `cond` holds (polling), failing after `ms`. */
export async function eventually(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pino logger at `level` whose JSON lines are collected in `lines`. */
export function capturedLog(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}
