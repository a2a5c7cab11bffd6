import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { createModel } from '../../src/store/create.ts';
import { listCachedModels } from '../../src/store/hf-cache.ts';
import { ModelStore } from '../../src/store/model-store.ts';
import { formatModelfile, parseModelfile } from '../../src/store/modelfile.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { addToHubCache } from '../helpers/hf-cache.ts';
import { HOSTILE_NAMES } from '../helpers/hostile-names.ts';

let root = '';
let env: Record<string, string> = {};
const config = '{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2"}';
const CHATML =
  '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-store-'));
  env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

test('a model in the HF cache layout is found by its repo name with no download', () => {
  const dir = addToHubCache(env.HF_HUB_CACHE!, 'acme/tiny', { 'config.json': config, 'model.safetensors': 'x' });
  const found = resolveModel('acme/tiny', { env });
  assert.deepEqual(
    [found.path, found.origin, found.name, found.format],
    [dir, 'hf-cache', 'acme/tiny:latest', 'safetensors'],
  );
  assert.equal(readFileSync(join(found.path, 'config.json'), 'utf8'), config);
  assert.deepEqual(
    listCachedModels(env.HF_HUB_CACHE!).map((m) => m.repo),
    ['acme/tiny'],
  );
  // HF_HOME locates the cache as its hub/ folder, like huggingface_hub.
  const home = join(root, 'hf-home');
  const viaHome = addToHubCache(join(home, 'hub'), 'acme/other', { 'config.json': config });
  assert.equal(resolveModel('acme/other', { env: { PAGODA_MODELS: env.PAGODA_MODELS!, HF_HOME: home } }).path, viaHome);
  assert.throws(
    () => resolveModel('acme/absent', { env }),
    /model "acme\/absent" not found in the store .* pull it with `pagoda pull acme\/absent`/,
  );
  assert.throws(() => resolveModel('acme/tiny:v2', { env }), /not found/);
});

test('create from a Modelfile, resolve, list, copy and remove', async () => {
  const snapshot = addToHubCache(env.HF_HUB_CACHE!, 'acme/tiny', { 'config.json': config });
  const mf = parseModelfile(
    [
      '# a comment',
      'FROM acme/tiny',
      'PARAMETER temperature 0.2',
      'PARAMETER stop "<|im_end|>"',
      'PARAMETER stop <|endoftext|>',
      'parameter num_ctx 512',
      `TEMPLATE """${CHATML}"""`,
      'SYSTEM You are terse.',
      'MESSAGE user Hi',
      'MESSAGE assistant """Hello',
      'there"""',
      'LICENSE """MIT"""',
    ].join('\n'),
  );
  const created = await createModel('mine', mf, { env });
  assert.equal(created.name, 'mine:latest');
  const found = resolveModel('mine', { env });
  assert.equal(found.origin, 'store');
  assert.equal(found.path, snapshot);
  assert.deepEqual(found.manifest!.source, { kind: 'hf-repo', repo: 'acme/tiny', revision: 'main' });
  assert.deepEqual(found.manifest!.parameters, {
    temperature: 0.2,
    stop: ['<|im_end|>', '<|endoftext|>'],
    num_ctx: 512,
  });
  assert.equal(found.manifest!.template, CHATML);
  assert.equal(found.manifest!.system, 'You are terse.');
  assert.deepEqual(found.manifest!.messages, [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello\nthere' },
  ]);
  assert.deepEqual(found.manifest!.license, ['MIT']);

  // FROM a stored model inherits everything; new parameters override.
  await createModel('mine:terse', parseModelfile('FROM mine\nPARAMETER temperature 0.9\nSYSTEM Be kind.'), { env });
  const child = resolveModel('mine:terse', { env }).manifest!;
  assert.equal(child.template, CHATML);
  assert.equal(child.system, 'Be kind.');
  assert.deepEqual(child.parameters.temperature, 0.9);
  assert.deepEqual(child.parameters.stop, ['<|im_end|>', '<|endoftext|>']);

  const store = new ModelStore(env.PAGODA_MODELS!);
  store.copy('mine', 'team/copy:v1');
  assert.deepEqual(
    store.list().map((m) => m.name),
    ['mine:latest', 'mine:terse', 'team/copy:v1'],
  );
  assert.equal(store.get('team/copy:v1')!.manifest.template, CHATML);
  assert.equal(store.remove('team/copy:v1'), true);
  assert.equal(store.remove('team/copy:v1'), false);
  assert.deepEqual(
    store.list().map((m) => m.name),
    ['mine:latest', 'mine:terse'],
  );
  assert.throws(() => store.copy('nothing', 'x'), /model "nothing" is not in the store/);

  // The Modelfile written back parses to the same layers.
  const again = parseModelfile(formatModelfile(found.manifest!));
  assert.deepEqual({ ...again, fromLine: 0, templateLine: 0 }, { ...mf, fromLine: 0, templateLine: 0 });
});

test('FROM a folder path is for local commands only', async () => {
  const folder = join(root, 'work', 'my-model');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'config.json'), config);
  const created = await createModel('local', parseModelfile('FROM ./my-model'), {
    env,
    allowPaths: true,
    baseDir: join(root, 'work'),
  });
  assert.deepEqual(created.manifest.source, { kind: 'hf-folder', path: folder });
  assert.equal(resolveModel('local', { env }).path, folder);
  await assert.rejects(
    async () =>
      createModel('remote', parseModelfile('FROM ./my-model'), {
        env,
        baseDir: join(root, 'work'),
        file: '/api/create',
      }),
    /\/api\/create:1: FROM "\.\/my-model": paths are not accepted here/,
  );
  await assert.rejects(
    async () => createModel('x', parseModelfile('\nFROM ./nothing'), { env, allowPaths: true, baseDir: root }),
    /Modelfile:2: FROM \.\/nothing: no such model folder/,
  );
  await assert.rejects(
    async () => createModel('x', parseModelfile('FROM /etc'), { env, allowPaths: true }),
    /not a model folder \(no config.json\)/,
  );
  // A path is resolved only for local commands, and only when the name lookup fails or it is plainly a path.
  assert.equal(resolveModel(folder, { env, allowPaths: true }).origin, 'path');
  assert.throws(() => resolveModel(folder, { env }), /invalid model name .*absolute path/);
});

test('Modelfile errors name the line', async () => {
  const cases: [string, RegExp][] = [
    ['FROM x\nBOGUS y', /Modelfile:2: unknown instruction BOGUS/],
    ['FROM x\n\nPARAMETER temperature warm', /Modelfile:3: parameter temperature must be a number, got "warm"/],
    ['FROM x\nPARAMETER top_k 1.5', /Modelfile:2: parameter top_k must be an integer/],
    [
      'FROM x\nPARAMETER warmth 1',
      /^UserError: Modelfile:2: unknown parameter "warmth" \(pagoda knows num_ctx, .*frequency_penalty, repeat_last_n, typical_p, mirostat, mirostat_tau, mirostat_eta; it accepts and ignores tfs_z, num_thread, num_gpu, .*penalize_newline\)$/,
    ],
    ['FROM x\nSYSTEM """never closed\nmore', /Modelfile:2: unterminated """/],
    ['FROM x\nMESSAGE robot hi', /Modelfile:2: MESSAGE role "robot" is not one of/],
    ['FROM x\nFROM y', /Modelfile:2: FROM given twice/],
    ['SYSTEM hi', /Modelfile: no FROM line/],
    ['FROM x\nADAPTER ./a\nADAPTER ./b', /Modelfile:3: one ADAPTER only/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseModelfile(text), re, text);
  // Ollama's sampler options are parameters; tail-free sampling, which no runner has any more, is a warning.
  const exported = parseModelfile(
    'FROM x\nPARAMETER mirostat 2\nPARAMETER tfs_z 1.0\nPARAMETER repeat_last_n 64\nPARAMETER typical_p 0.7',
  );
  assert.deepEqual(exported.parameters, { mirostat: 2, repeat_last_n: 64, typical_p: 0.7 });
  assert.deepEqual(exported.warnings, ['Modelfile:3: PARAMETER tfs_z: pagoda does not implement it; ignored']);
  assert.throws(() => parseModelfile('FROM x\nPARAMETER mirostat 1.5'), /parameter mirostat must be an integer/);
  // llama.cpp's runner options are accepted and left out, as in a request's options.
  assert.deepEqual(
    parseModelfile('FROM x\nPARAMETER num_gpu 99\nPARAMETER num_keep 24\nPARAMETER top_k 5').parameters,
    {
      top_k: 5,
    },
  );
  addToHubCache(env.HF_HUB_CACHE!, 'acme/tiny', { 'config.json': config });
  await assert.rejects(
    async () => createModel('t', parseModelfile('FROM acme/tiny\nTEMPLATE """line one\n{{ if .System }}"""'), { env }),
    /Modelfile:3: TEMPLATE is not a valid Go template: unclosed \{\{if\}\}/,
  );
  await assert.rejects(
    async () =>
      createModel('t', parseModelfile('FROM acme/tiny\n\nTEMPLATE "{{ if .System }}{{ nofunc 1 }}{{ end }}"'), { env }),
    /^UserError: Modelfile:3: TEMPLATE is not a valid Go template: function "nofunc" not defined$/,
  );
  await assert.rejects(
    async () => createModel('t', parseModelfile('FROM acme/nope'), { env }),
    /Modelfile:1: FROM acme\/nope: not in the Hugging Face cache; run `pagoda pull acme\/nope` first/,
  );
  await assert.rejects(
    async () => createModel('t', parseModelfile('FROM nope'), { env }),
    /Modelfile:1: FROM nope: no such model in the store/,
  );
});

test('names that could escape the store are refused by the store, resolution and create (FROM included)', async () => {
  addToHubCache(env.HF_HUB_CACHE!, 'acme/tiny', { 'config.json': config });
  await createModel('ok', parseModelfile('FROM acme/tiny'), { env });
  const store = new ModelStore(env.PAGODA_MODELS!);
  for (const [name, reason] of HOSTILE_NAMES) {
    const check = (fn: () => unknown, what: string) =>
      assert.throws(
        fn,
        (err: Error) => reason.test(err.message) && !err.message.includes('\n'),
        `${what} ${JSON.stringify(name)}`,
      );
    check(() => store.get(name), 'get');
    check(() => store.put(name, store.get('ok')!.manifest), 'put');
    check(() => store.remove(name), 'remove');
    check(() => store.copy('ok', name), 'copy to');
    check(() => store.copy(name, 'x'), 'copy from');
    check(() => resolveModel(name, { env }), 'resolve');
    await assert.rejects(
      async () => createModel(name, parseModelfile('FROM acme/tiny'), { env }),
      (err: Error) => reason.test(err.message) && !err.message.includes('\n'),
      `create ${JSON.stringify(name)}`,
    );
    if (name && !name.startsWith('/') && !name.startsWith('~') && !name.includes('\n')) {
      const from = name.startsWith('..') ? `x/${name}` : name;
      await assert.rejects(
        async () => createModel('fine', { ...parseModelfile('FROM x'), from }, { env }),
        /FROM .*(invalid model name|paths are not accepted)/,
        `FROM ${JSON.stringify(from)}`,
      );
    }
  }
});
