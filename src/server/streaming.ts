import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * An AbortSignal that fires when the client goes away before the response has been fully written
 * (socket closed mid-stream or while a non-streaming request is still generating): `controller`'s, which others may
 * abort too.
 */
export function clientGone(
  request: FastifyRequest,
  reply: FastifyReply,
  controller = new AbortController(),
): AbortSignal {
  const res = reply.raw;
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  };
  res.once('close', onClose);
  request.raw.once('aborted', onClose);
  return controller.signal;
}

/** Server-sent events (OpenAI) or newline-delimited JSON (Ollama), written straight to the socket. */
export class EventStream {
  private ended = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly format: 'sse' | 'ndjson',
  ) {
    reply.hijack();
    const headers: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
    headers['content-type'] = format === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson';
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
    reply.raw.writeHead(200, headers);
  }

  get open(): boolean {
    return !this.ended && !this.reply.raw.destroyed;
  }

  send(event: unknown): void {
    if (!this.open) return;
    const json = JSON.stringify(event);
    this.reply.raw.write(this.format === 'sse' ? `data: ${json}\n\n` : `${json}\n`);
  }

  /** Ends the stream; SSE streams close with OpenAI's `data: [DONE]`. */
  end(): void {
    if (!this.open) return;
    this.ended = true;
    this.reply.raw.end(this.format === 'sse' ? 'data: [DONE]\n\n' : undefined);
  }
}
