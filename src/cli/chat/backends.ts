import type { LoadedEngine } from '../../engine/load.ts';
import type { SamplingParams } from '../../engine/types.ts';
import { UserError } from '../../util/errors.ts';
import { withRunDefaults } from '../sampling-options.ts';
import { encodeConversation } from './conversation.ts';
import type { ChatBackend, ChatTurn } from './repl.ts';

/**
 * Chat with the engine in this process: the conversation through the chat template, or as plain text without one;
 * the given `params` over the model's sampling defaults and pagoda's own (greedy).
 */
export function localChat(loaded: LoadedEngine, given: Partial<SamplingParams>): ChatBackend {
  const params = withRunDefaults(given, loaded.engine.config.samplingDefaults);
  return {
    async *stream(messages: readonly ChatTurn[], signal: AbortSignal) {
      const prompt = encodeConversation(loaded, messages);
      for await (const out of loaded.engine.generate({ prompt, params })) {
        if (signal.aborted) return;
        for (const d of out.outputs) if (d.text) yield d.text;
      }
    },
  };
}

/**
 * Chat through a running server's POST /api/chat (NDJSON stream), as Ollama's CLI does. Only the given `params` go
 * as options: the server applies the model's defaults beneath them.
 */
export function remoteChat(baseUrl: string, model: string, params: Partial<SamplingParams>): ChatBackend {
  const options = ollamaOptions(params);
  return {
    async *stream(messages: readonly ChatTurn[], signal: AbortSignal) {
      let res: Response;
      try {
        res = await fetch(`${baseUrl}/api/chat`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...authHeader() },
          body: JSON.stringify({ model, messages, stream: true, options }),
          signal,
        });
      } catch (err) {
        if (signal.aborted) return;
        throw new UserError(`cannot reach the pagoda server at ${baseUrl}: ${(err as Error).message}`);
      }
      if (!res.ok || !res.body) {
        const body = await res.text();
        throw new UserError(`${baseUrl}/api/chat: ${errorText(body) ?? `HTTP ${res.status}`}`);
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
            const event = JSON.parse(line) as { message?: { content?: string }; error?: string; done?: boolean };
            if (event.error) throw new UserError(event.error);
            if (event.message?.content) yield event.message.content;
            if (event.done) return;
          }
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    },
  };
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

/** The given sampling settings under Ollama's option names. */
function ollamaOptions(p: Partial<SamplingParams>): Record<string, unknown> {
  const entries: [string, unknown][] = [
    ['temperature', p.temperature],
    ['top_k', p.topK],
    ['top_p', p.topP],
    ['min_p', p.minP],
    ['seed', p.seed],
    ['num_predict', p.maxTokens],
    ['repeat_penalty', p.repetitionPenalty],
    ['presence_penalty', p.presencePenalty],
    ['frequency_penalty', p.frequencyPenalty],
    ['stop', p.stop],
  ];
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined));
}
