import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { ModelStore } from '../../src/store/model-store.ts';
import { OllamaStore } from '../../src/store/ollama/store.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { addToHubCache } from '../helpers/hf-cache.ts';
import { HOSTILE_NAMES } from '../helpers/hostile-names.ts';
import {
  addToOllamaStore,
  EMPTY_GGUF,
  type FakeLayer,
  ollamaManifest,
  sha256,
  treeState,
} from '../helpers/ollama-store.ts';

const TEMPLATE = '{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>';
const LAYERS: FakeLayer[] = [
  { kind: 'model', content: EMPTY_GGUF },
  { kind: 'template', content: TEMPLATE },
  { kind: 'system', content: 'You are a llama.' },
  { kind: 'params', content: '{"stop":["<|user|>","<|end|>"],"temperature":0.6,"num_keep":24,"num_ctx":4096}' },
  { kind: 'license', content: 'LLAMA 3.2 COMMUNITY LICENSE' },
  { kind: 'license', content: 'Acceptable use policy' },
];

let root = '';
let ollama = '';
let env: Record<string, string> = {};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-ollama-'));
  ollama = join(root, 'ollama');
  env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf'), OLLAMA_MODELS: ollama };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

test("a model in Ollama's store resolves by its short and full names, with its layers, copying nothing", () => {
  const file = addToOllamaStore(ollama, 'registry.ollama.ai/library/llama3.2/latest', LAYERS);
  const before = treeState(ollama);
  for (const ref of ['llama3.2', 'llama3.2:latest', 'registry.ollama.ai/library/llama3.2:latest']) {
    const m = resolveModel(ref, { env });
    assert.equal(m.name, 'llama3.2:latest', ref);
    assert.equal(m.origin, 'ollama');
    assert.equal(m.format, 'gguf');
    assert.equal(m.path, join(ollama, 'blobs', sha256(EMPTY_GGUF).replace(':', '-')));
    assert.equal(m.digest, sha256(readFileSync(file)).slice('sha256:'.length));
    assert.equal(m.manifest?.template, TEMPLATE);
    assert.equal(m.manifest?.system, 'You are a llama.');
    // num_keep has no meaning in pagoda and is left out; the others are type-checked.
    assert.deepEqual(m.manifest?.parameters, { stop: ['<|user|>', '<|end|>'], temperature: 0.6, num_ctx: 4096 });
    assert.deepEqual(m.manifest?.license, ['LLAMA 3.2 COMMUNITY LICENSE', 'Acceptable use policy']);
    assert.equal(m.manifest?.from, 'registry.ollama.ai/library/llama3.2:latest');
  }
  assert.deepEqual(treeState(ollama), before);
  assert.deepEqual(new OllamaStore(ollama).names(), ['llama3.2:latest']);
});

test("namespaces and other registries keep Ollama's spelling", () => {
  addToOllamaStore(ollama, 'registry.ollama.ai/acme/tiny/q8', LAYERS.slice(0, 1));
  addToOllamaStore(ollama, 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M', LAYERS.slice(0, 2));
  assert.equal(resolveModel('acme/tiny:q8', { env }).origin, 'ollama');
  const hf = resolveModel('hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', { env });
  assert.equal(hf.name, 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M');
  assert.equal(hf.manifest?.template, TEMPLATE);
  assert.deepEqual(new OllamaStore(ollama).names(), [
    'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M',
    'acme/tiny:q8',
  ]);
});

test("lookups go pagoda's store, then Ollama's, then the Hugging Face cache", () => {
  addToOllamaStore(ollama, 'registry.ollama.ai/acme/tiny/latest', LAYERS.slice(0, 1));
  addToHubCache(env.HF_HUB_CACHE!, 'acme/tiny', { 'config.json': '{}' });
  assert.equal(resolveModel('acme/tiny', { env }).origin, 'ollama');
  const folder = join(root, 'folder');
  mkdirSync(folder);
  writeFileSync(join(folder, 'config.json'), '{}');
  new ModelStore(env.PAGODA_MODELS!).put('acme/tiny', {
    schemaVersion: 1,
    source: { kind: 'hf-folder', path: folder },
    from: folder,
    parameters: {},
    messages: [],
    license: [],
    createdAt: new Date().toISOString(),
  });
  assert.equal(resolveModel('acme/tiny', { env }).origin, 'store');
  assert.throws(
    () => resolveModel('absent:7b', { env }),
    (err: Error) =>
      err.message ===
      `model "absent:7b" not found in the store (${env.PAGODA_MODELS}), Ollama's store (${ollama}) ` +
        `or the Hugging Face cache (${env.HF_HUB_CACHE}); pull it with \`pagoda pull absent:7b\``,
  );
});

/** Each damaged or hostile store gives one line naming the model and what is wrong. */
const HOSTILE: [string, (dir: string) => void, RegExp][] = [
  [
    'path traversal in a digest',
    (dir) => {
      const m = ollamaManifest(LAYERS.slice(0, 1));
      m.layers[0]!.digest = 'sha256:../../../../etc/passwd';
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [], m);
    },
    /layers\.0\.digest: expected "sha256:" and 64 lowercase hex digits/,
  ],
  [
    'a digest of another algorithm',
    (dir) => {
      const m = ollamaManifest(LAYERS.slice(0, 1));
      m.layers[0]!.digest = `sha512:${'a'.repeat(128)}`;
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [], m);
    },
    /layers\.0\.digest: expected "sha256:"/,
  ],
  [
    'a truncated model blob',
    (dir) => {
      const m = ollamaManifest(LAYERS.slice(0, 1));
      m.layers[0]!.size += 1000;
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', LAYERS.slice(0, 1), m);
    },
    /has 24 bytes, the manifest says 1024 \(truncated\?\)/,
  ],
  [
    'a missing blob',
    (dir) => {
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [], ollamaManifest(LAYERS.slice(0, 1)));
    },
    /blob sha256:[0-9a-f]{64} is missing/,
  ],
  [
    'a model blob that is not GGUF',
    (dir) => addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [{ kind: 'model', content: 'GGML....' }]),
    /model blob sha256:[0-9a-f]{64} is not a GGUF file \(wrong magic\)/,
  ],
  [
    'a text blob whose content does not match its digest',
    (dir) => {
      const layers = LAYERS.slice(0, 2);
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', layers);
      writeFileSync(join(dir, 'blobs', sha256(TEMPLATE).replace(':', '-')), TEMPLATE.replace('<', '>'));
    },
    /blob sha256:[0-9a-f]{64} does not match its digest/,
  ],
  [
    'a blob linked to a file outside the store',
    (dir) => {
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', LAYERS.slice(0, 1));
      const outside = join(dir, '..', 'outside.gguf');
      writeFileSync(outside, EMPTY_GGUF);
      const blob = join(dir, 'blobs', sha256(EMPTY_GGUF).replace(':', '-'));
      rmSync(blob);
      symlinkSync(outside, blob);
    },
    /leads outside Ollama's store/,
  ],
  [
    'a manifest that is not JSON',
    (dir) => {
      mkdirSync(join(dir, 'manifests/registry.ollama.ai/library/bad'), { recursive: true });
      writeFileSync(join(dir, 'manifests/registry.ollama.ai/library/bad/latest'), '{"schemaVersion": 2, "lay');
    },
    /not JSON/,
  ],
  [
    'a LoRA adapter',
    (dir) =>
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [
        ...LAYERS,
        { kind: 'adapter', content: EMPTY_GGUF },
      ]),
    /has a LoRA adapter \(application\/vnd\.ollama\.image\.adapter\), which pagoda does not support/,
  ],
  [
    'a vision projector',
    (dir) =>
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [...LAYERS, { kind: 'projector', content: 'x' }]),
    /has a vision projector .* which pagoda does not support/,
  ],
  [
    'a parameter of the wrong type',
    (dir) =>
      addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [
        LAYERS[0]!,
        { kind: 'params', content: '{"top_k":"many"}' },
      ]),
    /params layer sha256:[0-9a-f]{64}: parameter top_k must be a number, got "many"/,
  ],
  [
    'no model layer',
    (dir) => addToOllamaStore(dir, 'registry.ollama.ai/library/bad/latest', [LAYERS[1]!]),
    /has no model layer/,
  ],
];

for (const [what, make, reason] of HOSTILE) {
  test(`Ollama's store: ${what} is refused in one line, nothing read outside or written`, () => {
    make(ollama);
    const before = treeState(root);
    assert.throws(
      () => resolveModel('bad', { env }),
      (err: Error) =>
        err.message.startsWith('Ollama model bad:latest') && reason.test(err.message) && !err.message.includes('\n'),
    );
    assert.deepEqual(treeState(root), before);
  });
}

test("a manifest linked to a file outside Ollama's store is not read", () => {
  const outside = join(root, 'elsewhere');
  addToOllamaStore(outside, 'registry.ollama.ai/library/x/latest', LAYERS.slice(0, 1));
  mkdirSync(join(ollama, 'manifests/registry.ollama.ai/library/bad'), { recursive: true });
  symlinkSync(
    join(outside, 'manifests/registry.ollama.ai/library/x/latest'),
    join(ollama, 'manifests/registry.ollama.ai/library/bad/latest'),
  );
  assert.throws(
    () => resolveModel('bad', { env }),
    /^UserError: Ollama model bad:latest: .* leads outside Ollama's store/,
  );
});

test("hostile names never reach Ollama's store", () => {
  addToOllamaStore(ollama, 'registry.ollama.ai/library/llama3.2/latest', LAYERS);
  const store = new OllamaStore(ollama);
  for (const [name, reason] of HOSTILE_NAMES) {
    assert.throws(() => store.get(name), reason, JSON.stringify(name));
    assert.equal(store.has(name), false, JSON.stringify(name));
  }
});
