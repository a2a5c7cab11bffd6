import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { fimTokenIds, infillIds } from '../../src/server/fill-in-middle.ts';
import type { LoadedModel } from '../../src/server/models.ts';
import { goPromptTemplate } from '../../src/store/model-prompt.ts';
import { FakeTokenizer, fakeTemplate } from './fake-engine.ts';
import { post } from './harness.ts';
import { closeScriptedServers, serveScript } from './scripted-model.ts';

after(closeScriptedServers);

/** A code model's Go template in Ollama's style: fill-in-the-middle when there is a suffix, else a chat. */
const CODER = `{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}<|fim_middle|>
{{- else }}{{ range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}`;

const PREFIX = 'def add(a, b):\n    ';
const SUFFIX = '\n\nprint(add(1, 2))\n';
const FILLED = `<|fim_prefix|>${PREFIX}<|fim_suffix|>${SUFFIX}<|fim_middle|>`;

test('suffix on /api/generate and /v1/completions: a Go template that knows .Suffix renders the gap', async () => {
  const { url, prompt } = await serveScript('return a + b', goPromptTemplate(CODER));
  const generated = await post(`${url}/api/generate`, { model: 'm', prompt: PREFIX, suffix: SUFFIX, stream: false });
  assert.equal(generated.status, 200);
  assert.equal(generated.json.response, 'return a + b');
  assert.equal(prompt(), FILLED);
  const completed = await post(`${url}/v1/completions`, { model: 'm', prompt: PREFIX, suffix: SUFFIX });
  assert.equal((completed.json.choices as { text: string }[])[0]!.text, 'return a + b');
  assert.equal(prompt(), FILLED);
  // Without a suffix the same template chats.
  await post(`${url}/api/generate`, { model: 'm', prompt: 'Hi', stream: false });
  assert.equal(prompt(), '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  const shown = await post(`${url}/api/show`, { model: 'm' });
  assert.ok((shown.json.capabilities as string[]).includes('insert'));
});

test('suffix refusals: a model that cannot fill in, raw, system, token-id prompts', async () => {
  const { url } = await serveScript('x', fakeTemplate);
  const message = (r: { json: Record<string, unknown> }) =>
    typeof r.json.error === 'string' ? r.json.error : (r.json.error as { message: string }).message;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['/api/generate', { prompt: 'a', suffix: 'b' }, /^suffix: model "m" does not support fill-in-the-middle/],
    ['/v1/completions', { prompt: 'a', suffix: 'b' }, /^suffix: model "m" does not support fill-in-the-middle/],
    ['/api/generate', { prompt: 'a', suffix: 'b', raw: true }, /^suffix cannot be combined with raw: true/],
    ['/api/generate', { prompt: 'a', suffix: 'b', system: 's' }, /^system cannot be combined with suffix/],
    ['/v1/completions', { prompt: [1, 2], suffix: 'b' }, /^suffix needs text prompts, not token ids/],
  ];
  for (const [path, body, pattern] of cases) {
    const r = await post(`${url}${path}`, { model: 'm', stream: false, ...body });
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    assert.match(message(r), pattern);
  }
  const shown = await post(`${url}/api/show`, { model: 'm' });
  assert.ok(!(shown.json.capabilities as string[]).includes('insert'));
});

/** The fake byte tokenizer with a vocabulary's named specials after its bytes. */
function withSpecials(names: string[]) {
  const bytes = new FakeTokenizer();
  const base = bytes.vocabSize;
  return Object.assign(bytes, {
    tokenId: (name: string) => (names.includes(name) ? base + names.indexOf(name) : null),
  });
}

test('without a Go template, the vocabulary markers in prefix-suffix-middle order after BOS', async () => {
  for (const markers of [
    ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'],
    ['<fim_prefix>', '<fim_suffix>', '<fim_middle>'],
    ['<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>'],
    ['▁<PRE>', '▁<SUF>', '▁<MID>'],
  ]) {
    const tokenizer = withSpecials(['<|endoftext|>', ...markers]);
    assert.deepEqual(fimTokenIds(tokenizer), [260, 261, 262], markers[0]);
  }
  assert.equal(fimTokenIds(withSpecials(['<|fim_prefix|>', '<|fim_middle|>'])), null, 'an incomplete set is none');
  const tokenizer = withSpecials(['<fim_prefix>', '<fim_suffix>', '<fim_middle>']);
  const model = {
    tokenizer,
    chatTemplate: fakeTemplate,
    engine: { encode: async (text: string, o: { addSpecialTokens: boolean }) => tokenizer.encode(text, o) },
  } as unknown as LoadedModel;
  const bytes = (s: string) => [...Buffer.from(s)].map((b) => b + 3);
  assert.deepEqual(await infillIds(model, 'm', 'ab', 'cd'), [1, 259, ...bytes('ab'), 260, ...bytes('cd'), 261]);
});
