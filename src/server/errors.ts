/**
 * API errors and their wire shapes: OpenAI's `{error:{message,type,param,code}}` under /v1 and /v2, Anthropic's
 * `{type:'error',error:{type,message}}` under /v1/messages, Ollama's `{error}` everywhere else. Routes throw
 * `ApiError`; the app's error handler picks the shape from the URL.
 */

export type ApiFamily = 'openai' | 'anthropic' | 'ollama';

const OPENAI_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'service_unavailable_error',
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The request field at fault, e.g. `messages[0].content`. */
    readonly param: string | null = null,
    /** A stable machine-readable code, e.g. `model_not_found`. */
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, param, code);
}

/** Anthropic's error types by status. */
const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  503: 'overloaded_error',
};

export function apiFamily(url: string): ApiFamily {
  if (/^\/v1\/messages(\/|\?|$)/.test(url)) return 'anthropic';
  // /rerank is vLLM's (and Jina's) alias of /v1/rerank, /v2/rerank Cohere's path; /score, /tokenize and /detokenize
  // are vLLM's.
  return /^\/v[12](\/|\?|$)/.test(url) || /^\/(rerank|score|tokenize|detokenize)(\?|$)/.test(url) ? 'openai' : 'ollama';
}

export function errorBody(family: ApiFamily, err: ApiError): unknown {
  if (family === 'ollama') return { error: err.message };
  if (family === 'anthropic') {
    const type = ANTHROPIC_TYPES[err.status] ?? (err.status >= 500 ? 'api_error' : 'invalid_request_error');
    return { type: 'error', error: { type, message: err.message }, request_id: null };
  }
  const type = OPENAI_TYPES[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error');
  return { error: { message: err.message, type, param: err.param, code: err.code } };
}

/** Maps anything thrown while handling a request (Fastify's own errors included) to an ApiError. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'request body is larger than the limit');
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, 'unsupported content type');
  if (status >= 400 && status < 500) return new ApiError(status, e?.message ?? 'bad request');
  return new ApiError(500, 'internal server error');
}

/** Whether an error is the server's failure, to log: a 5xx but 503 (a full queue, a shutdown, a model loading). */
export function isFailure(api: ApiError): boolean {
  return api.status >= 500 && api.status !== 503;
}

/**
 * An error met while a stream is open, as the client is told it: an ApiError stays itself; anything else is a 500
 * whose text stays in the log (see isFailure).
 */
export function streamFailure(err: unknown, log: { error(obj: object, msg: string): void }): ApiError {
  const api = toApiError(err);
  if (isFailure(api)) log.error({ err }, 'stream failed');
  return api;
}
