import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import type { GenerateRequest } from '../../src/engine/types.ts';
import type { LoadedModel, ModelEntry } from '../../src/server/models.ts';
import { type FakeEngine, FakeSource, FakeTokenizer } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

/** The test double without a chat template, as a base model that ships none. */
class PlainSource extends FakeSource {
  async load(entry: ModelEntry): Promise<LoadedModel> {
    return { ...(await super.load(entry)), chatTemplate: null };
  }
}

const source = new PlainSource();
const prompts: number[][] = [];
let server: TestServer;
let ollama: Ollama;
before(async () => {
  server = await startTestServer(source, [{ name: 'base', path: '/base', ref: 'base' }]);
  ollama = new Ollama({ host: server.url });
  await ollama.generate({ model: 'base', prompt: '' });
  const engine = source.engines.get('base') as FakeEngine;
  const generate = engine.generate.bind(engine);
  engine.generate = (request: GenerateRequest) => {
    prompts.push(request.prompt as number[]);
    return generate(request);
  };
});
after(() => server.close());

const tokenizer = new FakeTokenizer();
const lastPromptText = () => tokenizer.decode(prompts.at(-1)!);

test("/api/chat on a model without a chat template falls back to Ollama's default template", async () => {
  const r = await ollama.chat({
    model: 'base',
    messages: [
      { role: 'system', content: 'You are terse. ' },
      { role: 'user', content: 'Once upon' },
      { role: 'assistant', content: ' a time' },
      { role: 'user', content: ' there was' },
    ],
    options: { num_predict: 4 },
  });
  assert.equal(r.message.role, 'assistant');
  assert.equal(r.message.content.length, 4);
  // {{ .Prompt }} per exchange, each answer after its prompt; the system prompt has no place in it.
  assert.equal(lastPromptText(), 'Once upon a time there was');
  assert.equal(prompts.at(-1)![0], tokenizer.bosTokenId, 'BOS from the tokenizer, as for Go templates');
});

test('/api/generate on it still sends the prompt as is', async () => {
  await ollama.generate({ model: 'base', prompt: 'plain text', options: { num_predict: 2 } });
  assert.equal(lastPromptText(), 'plain text');
});

test('the OpenAI chat route refuses it, in OpenAI words (as vLLM does)', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(
    client.chat.completions.create({ model: 'base', messages: [{ role: 'user', content: 'hi' }] }),
    (err: unknown) =>
      err instanceof OpenAI.BadRequestError && /has no chat template; use the completions endpoint/.test(err.message),
  );
});
