import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { createModel } from '../../src/store/create.ts';
import { parseModelfile } from '../../src/store/modelfile.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { EMPTY_GGUF } from '../helpers/ollama-store.ts';

let root = '';
let env: Record<string, string> = {};
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-modelfile-gguf-'));
  env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf'), OLLAMA_MODELS: join(root, 'ollama') };
  mkdirSync(join(root, 'project'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

test('FROM ./model.gguf is relative to the Modelfile, and a GGUF file is known by its content', async () => {
  writeFileSync(join(root, 'project', 'model.gguf'), EMPTY_GGUF);
  writeFileSync(join(root, 'project', 'weights'), EMPTY_GGUF);
  writeFileSync(join(root, 'project', 'fake.gguf'), 'not a GGUF file');
  const opts = { env, allowPaths: true, baseDir: join(root, 'project') };
  await createModel('local', parseModelfile('FROM ./model.gguf\nSYSTEM Be brief.'), opts);
  const m = resolveModel('local', { env });
  assert.deepEqual([m.format, m.path, m.manifest?.system], ['gguf', join(root, 'project', 'model.gguf'), 'Be brief.']);
  // An extension means nothing either way: Ollama's blobs have none.
  await createModel('blob', parseModelfile('FROM ./weights'), opts);
  assert.equal(resolveModel('blob', { env }).format, 'gguf');
  await assert.rejects(
    async () => createModel('fake', parseModelfile('FROM ./fake.gguf'), opts),
    /^UserError: Modelfile:1: FROM \.\/fake\.gguf: not a model folder or a GGUF file$/,
  );
});
