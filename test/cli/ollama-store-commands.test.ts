import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveModel } from '../../src/store/resolve.ts';
import { pagodaAsync } from '../helpers/cli.ts';
import { addToOllamaStore, EMPTY_GGUF, treeState } from '../helpers/ollama-store.ts';

const TEMPLATE = '{{ .System }} {{ .Prompt }}';
let root = '';
let env: Record<string, string> = {};

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-ollama-cli-'));
  env = {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    OLLAMA_MODELS: join(root, 'ollama'),
  };
  addToOllamaStore(env.OLLAMA_MODELS!, 'registry.ollama.ai/library/llama3.2/latest', [
    { kind: 'model', content: EMPTY_GGUF },
    { kind: 'template', content: TEMPLATE },
    { kind: 'system', content: 'Be a llama.' },
    { kind: 'params', content: '{"temperature":0.5,"stop":["<eot>"]}' },
    { kind: 'license', content: 'Llama license' },
  ]);
  addToOllamaStore(env.OLLAMA_MODELS!, 'registry.ollama.ai/library/broken/latest', [
    { kind: 'model', content: 'not gguf' },
  ]);
});
after(() => rmSync(root, { recursive: true, force: true }));

const pagoda = (...args: string[]) => pagodaAsync(args, { cwd: root, env: { ...process.env, ...env } });

test("list, show, cp, create and rm on Ollama's models, which stay untouched", async () => {
  const untouched = treeState(env.OLLAMA_MODELS!);
  const list = (await pagoda('list')).stdout.split('\n');
  assert.match(list[0]!, /^NAME\s+ID\s+SIZE\s+MODIFIED\s+SOURCE$/);
  assert.ok(
    list.some((l) => /^llama3\.2:latest\s+[0-9a-f]{12}\s+\d+ B\s+.*\sollama$/.test(l)),
    list.join('\n'),
  );
  assert.ok(
    list.some((l) => /^broken:latest\s+damaged\s+ollama$/.test(l)),
    list.join('\n'),
  );

  assert.equal((await pagoda('show', 'llama3.2', '--template')).stdout, `${TEMPLATE}\n`);
  assert.equal((await pagoda('show', 'llama3.2', '--system')).stdout, 'Be a llama.\n');
  assert.equal((await pagoda('show', 'llama3.2', '--parameters')).stdout, 'temperature 0.5\nstop "<eot>"\n');
  assert.equal((await pagoda('show', 'llama3.2', '--license')).stdout, 'Llama license\n');

  await assert.rejects(pagoda('rm', 'llama3.2'), (err: { stderr: string; code: number }) => {
    assert.equal(err.code, 1);
    assert.equal(
      err.stderr,
      `error: llama3.2 is in Ollama's store (${env.OLLAMA_MODELS}), which pagoda only reads; remove it with \`ollama rm llama3.2\`\n`,
    );
    return true;
  });
  await assert.rejects(pagoda('rm', 'broken'), /which pagoda only reads/);

  // A copy and a model created FROM it are pagoda's, over Ollama's blob (no weights copied).
  assert.match((await pagoda('cp', 'llama3.2', 'mine')).stdout, /copied llama3\.2 to mine/);
  writeFileSync(join(root, 'Modelfile'), 'FROM llama3.2\nPARAMETER temperature 0.1\n');
  assert.match((await pagoda('create', 'cooler', '-f', 'Modelfile')).stdout, /created cooler:latest/);
  const original = resolveModel('llama3.2', { env });
  for (const name of ['mine', 'cooler']) {
    const m = resolveModel(name, { env });
    assert.equal(m.origin, 'store');
    assert.equal(m.format, 'gguf');
    assert.equal(m.path, original.path);
    assert.equal(m.manifest?.template, TEMPLATE);
    assert.equal(m.manifest?.system, 'Be a llama.');
  }
  assert.deepEqual(resolveModel('cooler', { env }).manifest?.parameters, { temperature: 0.1, stop: ['<eot>'] });
  assert.match((await pagoda('rm', 'mine')).stdout, /deleted mine/);
  assert.deepEqual(treeState(env.OLLAMA_MODELS!), untouched);
});
