import { api, getJson, ndjson } from './api.js';
import { hasChatTemplate } from './model-show.js';

/** The model names the server serves, from /api/tags. */
export async function modelNames() {
  return (await getJson('api/tags')).models.map((m) => m.name);
}

/** Sampling options as the Ollama API takes them: empty fields are left to the model's defaults. */
export function cleanOptions(options) {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== '' && v !== null && v !== undefined));
}

/**
 * Streams one answer: /api/chat with the whole conversation when the model has a chat template, else
 * /api/generate continuing the last message as plain text. Yields { text } pieces, then { done } with Ollama's
 * final statistics.
 */
export async function* answer({ model, system, options, messages }, signal) {
  const chat = await hasChatTemplate(model);
  const history = messages.map(({ role, content }) => ({ role, content }));
  const body = chat
    ? { model, messages: system ? [{ role: 'system', content: system }, ...history] : history }
    : { model, prompt: history.at(-1).content, ...(system ? { system } : {}) };
  const res = await api(chat ? 'api/chat' : 'api/generate', {
    method: 'POST',
    body: { ...body, options: cleanOptions(options), stream: true },
    signal,
  });
  for await (const event of ndjson(res)) {
    if (event.error) throw new Error(event.error);
    if (event.done) {
      yield { done: event };
      return;
    }
    const text = chat ? event.message?.content : event.response;
    if (text) yield { text };
  }
}

/** Timing of one answer as the user saw it: time to the first piece, then tokens per second. */
export class AnswerClock {
  constructor() {
    this.start = performance.now();
    this.first = null;
    this.last = null;
    this.pieces = 0;
  }

  piece() {
    this.last = performance.now();
    this.first ??= this.last;
    this.pieces++;
  }

  /** Ollama's counts when the answer finished (`done`), else what arrived (a stopped answer). */
  stats(done) {
    const ttftMs = this.first === null ? null : this.first - this.start;
    // Tokens after the first over the time they took (the first one's wait is the TTFT).
    const [tokens, seconds] =
      done?.eval_count !== undefined
        ? [done.eval_count, done.eval_duration / 1e9]
        : [this.pieces, this.first === null ? 0 : (this.last - this.first) / 1000];
    return { tokens, perSecond: seconds > 0 ? (tokens - 1) / seconds : null, ttftMs };
  }
}
