import type { LoadedEngine } from '../../engine/load.ts';
import type { RequestMetrics } from '../../engine/types.ts';
import { samplingFrom, samplingTo } from '../../primitives/sampling-names.ts';
import { UserError } from '../../util/errors.ts';
import { withRunDefaults } from '../sampling-options.ts';
import { statsFromMetrics, statsFromOllama } from './answer-stats.ts';
import { fitToContext } from './context-room.ts';
import { encodeConversation, renderConversation } from './conversation.ts';
import type { ChatBackend, ChatTurn } from './repl.ts';
import type { ChatSettings } from './set-command.ts';

/**
 * Chat with the engine in this process: the chat template (or, raw or template-less, the plain text) of the
 * conversation, with the given settings over the model's sampling defaults and pagoda's own (greedy), the answer
 * capped to the context's room as the server caps it.
 */
export function localChat(loaded: LoadedEngine, model: string): ChatBackend {
  const modelDefaults = loaded.engine.config.samplingDefaults;
  return {
    hasTemplate: loaded.chatTemplate !== null,
    model,
    async *stream(messages: readonly ChatTurn[], settings: ChatSettings, signal: AbortSignal) {
      const prompt = encodeConversation(loaded, messages, settings.raw);
      const given = withRunDefaults(settings.params, modelDefaults);
      const params = fitToContext(given, modelDefaults ?? {}, prompt.length, loaded.engine.config.maxModelLen);
      const grammar = settings.format === 'json' ? ({ type: 'json_object' } as const) : undefined;
      let metrics: RequestMetrics | null = null;
      for await (const out of loaded.engine.generate({ prompt, params, grammar })) {
        if (signal.aborted) return;
        for (const d of out.outputs) if (d.text) yield d.text;
        metrics = out.metrics;
      }
      if (metrics) yield statsFromMetrics(metrics);
    },
  };
}

/**
 * Chat through a running server, as Ollama's CLI does: POST /api/chat, or /api/generate with `raw: true` and the
 * plain text of the conversation when raw or the model has no chat template (/api/show's template is empty). Only
 * the given settings go as options: the server applies the model's defaults beneath them.
 */
export async function remoteChat(baseUrl: string, model: string): Promise<ChatBackend> {
  const show = (await (await post(baseUrl, '/api/show', { model })).json()) as {
    template?: unknown;
    parameters?: unknown;
  };
  const hasTemplate = show.template !== '';
  // The same rule as in-process: pagoda's greedy default applies where the model's own defaults set no temperature.
  const modelDefaults = samplingFrom('ollama', shownParameters(show.parameters));
  return {
    hasTemplate,
    model,
    async *stream(messages: readonly ChatTurn[], settings: ChatSettings, signal: AbortSignal) {
      const options = samplingTo('ollama', withRunDefaults(settings.params, modelDefaults));
      const plain = settings.raw || !hasTemplate;
      const format = settings.format;
      let res: Response;
      try {
        res = plain
          ? await post(
              baseUrl,
              '/api/generate',
              { model, prompt: renderConversation(null, messages).text, raw: true, stream: true, options, format },
              signal,
            )
          : await post(baseUrl, '/api/chat', { model, messages, stream: true, options, format }, signal);
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
      const decoder = new TextDecoder();
      let buffered = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += decoder.decode(chunk, { stream: true });
          let newline = buffered.indexOf('\n');
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            newline = buffered.indexOf('\n');
            if (!line) continue;
            const event = JSON.parse(line) as {
              message?: { content?: string };
              response?: string;
              error?: string;
              done?: boolean;
            };
            if (event.error) throw new UserError(event.error);
            const text = plain ? event.response : event.message?.content;
            if (text) yield text;
            if (event.done) {
              yield statsFromOllama(event);
              return;
            }
          }
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    },
  };
}

/** POSTs JSON to the server; an unreachable server or an error status is one line naming the URL. */
async function post(baseUrl: string, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader() },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new UserError(`cannot reach the pagoda server at ${baseUrl}: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    throw new UserError(`${baseUrl}${path}: ${errorText(text) ?? `HTTP ${res.status}`}`);
  }
  return res;
}

function errorText(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: string }).error;
  } catch {
    return body || undefined;
  }
}

function authHeader(): Record<string, string> {
  const key = process.env.PAGODA_API_KEY || process.env.OLLAMA_API_KEY;
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** /api/show's `parameters` text (`name value` lines, strings JSON-quoted, repeated names collected) as values. */
function shownParameters(text: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const line of typeof text === 'string' ? text.split('\n') : []) {
    const space = line.indexOf(' ');
    if (space < 1) continue;
    const [name, raw] = [line.slice(0, space), line.slice(space + 1).trim()];
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    const prev = out[name];
    out[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}
