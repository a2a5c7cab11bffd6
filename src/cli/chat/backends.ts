import type { LoadedEngine } from '../../engine/load.ts';
import type { RequestMetrics } from '../../engine/types.ts';
import { samplingFrom, samplingTo } from '../../primitives/sampling-names.ts';
import {
  afterReasoning,
  ChatOutputParser,
  type ChatOutputPart,
  reasoningMode,
  templateThinks,
} from '../../server/chat-output.ts';
import { UserError } from '../../util/errors.ts';
import { withRunDefaults } from '../sampling-options.ts';
import { authHeaders } from '../server-url.ts';
import type { ChatDelta } from './answer-printer.ts';
import { statsFromMetrics, statsFromOllama } from './answer-stats.ts';
import { fitToContext } from './context-room.ts';
import { encodeConversation, renderConversation } from './conversation.ts';
import type { ChatBackend, ChatTurn } from './repl.ts';
import type { ChatSettings } from './set-command.ts';

/**
 * Chat with the engine in this process: the chat template (or, raw or template-less, the plain text) of the
 * conversation, with the given settings over the model's sampling defaults and pagoda's own (greedy), the answer
 * capped to the context's room as the server caps it, and to `defaultMaxTokens` when nothing sets a limit. With
 * `think`, the template's enable_thinking is set and a thinking answer's `<think>` block comes apart.
 */
export function localChat(loaded: LoadedEngine, model: string, opts: { defaultMaxTokens?: number } = {}): ChatBackend {
  const modelDefaults = loaded.engine.config.samplingDefaults;
  const source = loaded.chatTemplate?.source ?? '';
  return {
    hasTemplate: loaded.chatTemplate !== null,
    thinks: templateThinks(source),
    model,
    async *stream(messages: readonly ChatTurn[], settings: ChatSettings, signal: AbortSignal) {
      const think = settings.raw ? undefined : settings.think;
      const kwargs = think === undefined ? undefined : { enable_thinking: think !== false };
      const { text, ids } = encodeConversation(loaded, messages, { raw: settings.raw, kwargs });
      const given = withRunDefaults(settings.params, modelDefaults);
      const { maxModelLen } = loaded.engine.config;
      const params = fitToContext(given, modelDefaults ?? {}, ids.length, maxModelLen, opts.defaultMaxTokens);
      const reasoning = think ? reasoningMode(source, text) : null;
      const parser = reasoning ? new ChatOutputParser({ reasoning, tools: null }) : null;
      const json = settings.format === 'json' ? ({ type: 'json_object' } as const) : undefined;
      const grammar = afterReasoning(json, reasoning);
      let metrics: RequestMetrics | null = null;
      for await (const out of loaded.engine.generate({ prompt: ids, params, grammar })) {
        if (signal.aborted) return;
        for (const d of out.outputs) if (d.text) yield* split(parser ? parser.push(d.text) : d.text);
        metrics = out.metrics;
      }
      if (parser) yield* split(parser.finish());
      if (metrics) yield statsFromMetrics(metrics);
    },
  };
}

/** An answer's piece as deltas: its thinking first, then its text. */
function* split(part: string | ChatOutputPart): Generator<ChatDelta> {
  if (typeof part === 'string') return void (yield part);
  if (part.reasoning) yield { thinking: part.reasoning };
  if (part.content) yield part.content;
}

/**
 * Chat through a running server, as Ollama's CLI does: POST /api/chat, or /api/generate with `raw: true` and the
 * plain text of the conversation when raw or the model has no chat template (/api/show's template is empty). Only
 * the given settings go as options: the server applies the model's defaults beneath them. `think` and `keep_alive`
 * go when given; the server's `message.thinking` comes apart from the answer.
 */
export async function remoteChat(baseUrl: string, model: string): Promise<ChatBackend> {
  const show = (await (await post(baseUrl, '/api/show', { model })).json()) as {
    template?: unknown;
    parameters?: unknown;
    capabilities?: unknown;
  };
  const hasTemplate = show.template !== '';
  // The same rule as in-process: pagoda's greedy default applies where the model's own defaults set no temperature.
  const modelDefaults = samplingFrom('ollama', shownParameters(show.parameters));
  return {
    hasTemplate,
    thinks: Array.isArray(show.capabilities) && show.capabilities.includes('thinking'),
    model,
    async *stream(messages: readonly ChatTurn[], settings: ChatSettings, signal: AbortSignal) {
      const options = samplingTo('ollama', withRunDefaults(settings.params, modelDefaults));
      const plain = settings.raw || !hasTemplate;
      const { format, think, keepAlive: keep_alive } = settings;
      let res: Response;
      try {
        res = plain
          ? await post(
              baseUrl,
              '/api/generate',
              {
                model,
                prompt: renderConversation(null, messages).text,
                raw: true,
                stream: true,
                options,
                format,
                keep_alive,
              },
              signal,
            )
          : await post(
              baseUrl,
              '/api/chat',
              { model, messages, stream: true, options, format, think, keep_alive },
              signal,
            );
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
              message?: { content?: string; thinking?: string };
              response?: string;
              error?: string;
              done?: boolean;
            };
            if (event.error) throw new UserError(event.error);
            if (event.message?.thinking) yield { thinking: event.message.thinking };
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
      headers: { 'content-type': 'application/json', ...authHeaders() },
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
