import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { FinishReason } from '../engine/types.ts';

/** What a generation request adds to its log line. */
export interface GenerationRecord {
  model: string;
  promptTokens: number;
  completionTokens: number;
  /** One per finished choice. */
  finishReasons: FinishReason[];
}

declare module 'fastify' {
  interface FastifyRequest {
    generation: GenerationRecord | null;
  }
}

/** Starts a request's generation record: the model now, token counts and finish reasons as the engine reports them. */
export function recordGeneration(reply: FastifyReply, model: string): GenerationRecord {
  const record: GenerationRecord = { model, promptTokens: 0, completionTokens: 0, finishReasons: [] };
  reply.request.generation = record;
  return record;
}

/**
 * One info line per request once its response has closed: method, URL, status, milliseconds and client address
 * (`aborted` when the client left before the whole response), and for a generation the model, prompt and completion
 * tokens and finish reason(s); none when `enabled` is false (`--disable-log-requests`). `onStatus` counts the responses.
 */
export function registerRequestLog(
  app: FastifyInstance,
  log: Logger,
  enabled: boolean,
  onStatus: (status: number) => void,
): void {
  app.decorateRequest('generation', null);
  app.addHook('onRequest', async (request, reply) => {
    const start = performance.now();
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      onStatus(status);
      // Nothing is gathered for a line that would not be written (the benches log nothing).
      if (!enabled || !log.isLevelEnabled('info')) return;
      const g = request.generation;
      const aborted = !reply.raw.writableFinished;
      const generation = g && {
        model: g.model,
        prompt_tokens: g.promptTokens,
        completion_tokens: g.completionTokens,
        // The line is written as the connection closes, before the engine has reported a cut request's abort.
        finish_reason: [...new Set(g.finishReasons)].join(',') || (aborted ? 'abort' : null),
      };
      log.info(
        {
          method: request.method,
          url: request.url.slice(0, 200),
          status,
          ms: Math.round(performance.now() - start),
          ip: request.ip,
          // The connection closed before the response was whole: the client went away.
          ...(aborted && { aborted }),
          ...generation,
        },
        'request',
      );
    });
  });
}
