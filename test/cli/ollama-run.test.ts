import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { resolveServeConfig } from '../../src/server/config.ts';
import { startServer } from '../../src/server/serve.ts';
import { pagodaSync } from '../helpers/cli.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { addToOllamaStore, treeState } from '../helpers/ollama-store.ts';

const gguf = sharedFixture('gguf/stories260K.gguf');
const stories = modelFixture('stories260K');
const skip = gguf.skip || stories.skip;
let root = '';
let env: Record<string, string> = {};
let golden = '';

before(() => {
  if (skip) return;
  root = mkdtempSync(join(tmpdir(), 'pagoda-ollama-run-'));
  env = {
    PAGODA_HOME: root,
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    OLLAMA_MODELS: join(root, 'ollama'),
  };
  // Ollama's store with stories260K.gguf as the model blob; the template joins the system prompt and the prompt,
  // so " a time" with the system prompt "Once upon" is the golden prompt "Once upon a time".
  addToOllamaStore(env.OLLAMA_MODELS!, 'registry.ollama.ai/library/stories/latest', [
    { kind: 'model', content: readFileSync(gguf.path) },
    { kind: 'template', content: '{{ .System }}{{ .Prompt }}' },
    { kind: 'system', content: 'Once upon' },
    { kind: 'params', content: '{"num_predict":64,"temperature":0,"num_keep":4}' },
  ]);
  const prompts = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8')).prompts;
  golden = prompts.find((x: { text: string }) => x.text === 'Once upon a time').greedy_text;
});
after(() => root && rmSync(root, { recursive: true, force: true }));

test("pagoda run NAME generates with Ollama's model, its template, system prompt and parameters", { skip }, () => {
  const before = treeState(env.OLLAMA_MODELS!);
  const r = pagodaSync(['run', 'stories', ' a time'], {
    env: { ...process.env, ...env, PAGODA_DEVICE: 'cpu' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${golden}\n`);
  assert.deepEqual(treeState(env.OLLAMA_MODELS!), before, "nothing written to Ollama's store");
});

test('serve answers "model": "stories" from Ollama\'s store; /api/tags and /api/show describe it as GGUF', {
  skip,
}, async () => {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models: ['stories'] };
  const server = await startServer(config, { log: () => {}, device: 'cpu' }, () => {});
  try {
    const ollama = new Ollama({ host: server.url });
    const out = await ollama.generate({ model: 'stories', prompt: ' a time' });
    assert.equal(out.response, golden);
    const listed = (await ollama.list()).models.find((m) => m.name === 'stories:latest');
    assert.equal(listed?.details.format, 'gguf');
    const show = await ollama.show({ model: 'stories' });
    assert.equal(show.system, 'Once upon');
    assert.equal(show.template, '{{ .System }}{{ .Prompt }}');
    assert.match(show.parameters, /^num_predict 64$/m);
    assert.deepEqual(
      [show.details.format, show.details.family, show.details.quantization_level],
      ['gguf', 'llama', 'F32'],
    );
    const info = show.model_info as unknown as Record<string, unknown>;
    assert.equal(info['general.architecture'], 'llama');
    assert.equal(typeof info['llama.context_length'], 'number');
    assert.equal(info['tokenizer.ggml.tokens'], null);
  } finally {
    await server.shutdown();
    process.env = saved;
  }
});

test("pagoda show NAME describes Ollama's GGUF model", { skip }, () => {
  const r = pagodaSync(['show', 'stories'], {
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /architecture\s+llama/);
  assert.match(r.stdout, /parameters\s+0\.3M/);
  assert.match(r.stdout, /quantization\s+F32/);
  assert.match(r.stdout, /num_predict\s+64/);
  assert.match(r.stdout, /Once upon/);
});
