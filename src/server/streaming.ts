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

/**
 * Server-sent events (OpenAI) or newline-delimited JSON (Ollama), written straight to the socket. The Responses API's
 * events are named (`event:` lines) and its stream ends without chat's `data: [DONE]` (`named`).
 */
export class EventStream {
  private ended = false;

  constructor(
    private readonly reply: FastifyReply,
    private readonly format: 'sse' | 'ndjson',
    private readonly named = false,
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

  /** Writes one event; a named stream's SSE event carries its `type` as the event name. */
  send(event: unknown): void {
    if (!this.open) return;
    const json = JSON.stringify(event);
    if (this.format === 'ndjson') this.reply.raw.write(`${json}\n`);
    else if (this.named) this.reply.raw.write(`event: ${(event as { type: string }).type}\ndata: ${json}\n\n`);
    else this.reply.raw.write(`data: ${json}\n\n`);
  }

  /** Ends the stream; chat's SSE streams close with OpenAI's `data: [DONE]`. */
  end(): void {
    if (!this.open) return;
    this.ended = true;
    this.reply.raw.end(this.format === 'sse' && !this.named ? 'data: [DONE]\n\n' : undefined);
  }
}
