import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate } from '../../src/loader/chat-template.ts';
import type { ServeConfig } from '../../src/server/config.ts';
import type { ChatTemplate as ServerTemplate } from '../../src/server/models.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { FakeSource } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

/** Hermes' tool-call template (Qwen2.5's and NousResearch's). */
export const hermesTemplate = new ChatTemplate(
  readFileSync(join(projectRoot, 'test', 'fixtures', 'tool-templates', 'hermes.jinja'), 'utf8'),
  'hermes',
  {},
);

/** A thinking template: Qwen3's switch (enable_thinking false writes an empty block into the prompt). */
export const thinkingTemplate = new ChatTemplate(
  '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}',
  'thinking',
  {},
);

/** A Hermes answer that says a word, then calls get_weather for Paris. */
export const WEATHER_CALL =
  'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

/**
 * The conversation the API tests send in their own shapes, as chat completions takes it: a system line, the question,
 * the assistant's reasoning, word and call, and the call's result.
 */
export function weatherConversation(
  call: { id: string; name: string; description: string; parameters: unknown },
  word: string,
) {
  const { id, name, description, parameters } = call;
  return {
    tools: [{ type: 'function', function: { name, description, parameters } }],
    messages: [
      { role: 'system', content: 'Answer in one line.' },
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: word,
        reasoning_content: 'look it up',
        tool_calls: [{ id, type: 'function', function: { name, arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: id, name, content: '{"temp": 21}' },
    ],
  };
}

const servers: TestServer[] = [];

/** Closes every server `serveScript` started (a test file's `after`). */
export const closeScriptedServers = () => Promise.all(servers.splice(0).map((s) => s.close()));

/**
 * A server whose one model, "m", answers `script` (one character a token) and renders with `template`; the engine it
 * was given, a wait for its first request, and that request's prompt as text (the fake tokenizer's bytes, BOS
 * dropped).
 */
export async function serveScript(
  script: string,
  template: ServerTemplate,
  opts: { config?: Partial<ServeConfig>; contextLength?: number; tokenDelayMs?: number } = {},
) {
  const source = new FakeSource(
    { tokenDelayMs: opts.tokenDelayMs ?? 0, script },
    opts.contextLength ?? 4096,
    8,
    template,
  );
  const server = await startTestServer(source, [{ name: 'm', path: '/nowhere', ref: '/nowhere' }], opts.config);
  servers.push(server);
  const engine = () => source.engines.get('m')!;
  return {
    url: server.url,
    engine,
    asked: async () => {
      for (let i = 0; i < 400 && !source.engines.get('m')?.lastRequest; i++) await new Promise((r) => setTimeout(r, 5));
    },
    prompt: () =>
      new TextDecoder().decode(
        Uint8Array.from((engine().lastRequest!.prompt as number[]).filter((t) => t >= 3).map((t) => t - 3)),
      ),
  };
}
