import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { resolveEntries, startServer } from '../../src/server/serve.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { post } from './harness.ts';

const fixture = (name: string) => join(projectRoot, 'test/fixtures/models', name);
const root = mkdtempSync(join(tmpdir(), 'pagoda-served-name-'));
after(() => rmSync(root, { recursive: true, force: true }));
const env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };

const TEMPLATE =
  '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[bot]{% endif %}';

test('--served-model-name names the first model (more names answer too); --chat-template replaces its template', async () => {
  const file = join(root, 'template.jinja');
  writeFileSync(file, TEMPLATE);
  const flags = {
    port: 0,
    host: '127.0.0.1',
    model: [fixture('tiny-llama'), fixture('tiny-qwen2')],
    servedModelName: ['llama', 'llama-alias'],
    loraModules: [`tuned=${fixture('tiny-llama-lora')}`],
  };
  const server = await startServer(resolveServeConfig(flags, env), { log: () => {}, chatTemplate: file }, () => {});
  try {
    await server.ready;
    const ids = (await fetch(`${server.url}/v1/models`).then((r) => r.json())).data.map((m: { id: string }) => m.id);
    assert.deepEqual(
      ids.slice(0, 4),
      ['llama', 'llama-alias', 'tiny-qwen2', 'tuned'],
      'an alias has its card, as vLLM lists it',
    );
    assert.equal((await fetch(`${server.url}/v1/models/llama-alias`).then((r) => r.json())).id, 'llama-alias');
    assert.ok(!ids.includes('tiny-llama'), 'the folder name is no longer the served name');
    const prompt = async (model: string) => {
      const body = { model, messages: [{ role: 'user', content: 'Hi' }] };
      const tokens = (await post(`${server.url}/tokenize`, body)).json.tokens;
      const text = (await post(`${server.url}/detokenize`, { model, tokens })).json.prompt as string;
      return text.replace(/^<s>\s*/, '');
    };
    assert.equal(await prompt('llama'), '[user]Hi[bot]');
    assert.equal(await prompt('llama-alias'), '[user]Hi[bot]', 'an alias is the same model');
    assert.equal(await prompt('tiny-qwen2'), '[user]Hi[bot]', 'every --model takes the template');
    assert.equal(await prompt('tuned'), '[user]Hi[bot]', "an adapted model keeps its base's template");
    const shown = (await post(`${server.url}/api/show`, { model: 'llama-alias' })).json;
    assert.equal(shown.template, TEMPLATE);
    const answer = (await post(`${server.url}/v1/completions`, { model: 'llama-alias', prompt: 'a', max_tokens: 2 }))
      .json;
    assert.equal(answer.model, 'llama', "answers name the model's served name");
  } finally {
    await server.shutdown();
  }
});

test('--served-model-name and --chat-template: bad values are one line', () => {
  const config = (flags: object) =>
    resolveServeConfig({ model: [fixture('tiny-llama'), fixture('tiny-qwen2')], ...flags }, env);
  assert.deepEqual(resolveServeConfig({}, { PAGODA_SERVED_MODEL_NAME: 'a, b' }).servedModelNames, ['a', 'b']);
  assert.throws(
    () => resolveEntries(config({ servedModelName: ['tiny-qwen2'] })),
    /^UserError: --served-model-name tiny-qwen2: another --model is served as "tiny-qwen2"$/,
  );
  assert.throws(
    () => resolveEntries(config({}), join(root, 'missing.jinja')),
    /^UserError: --chat-template .*missing\.jinja: no such file, and not a Jinja template either$/,
  );
});
