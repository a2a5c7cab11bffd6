import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Ollama } from 'ollama';
import { OllamaTemplate } from '../../src/gotemplate/ollama.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { loadGenerationConfig, loadModelConfig } from '../../src/loader/hf-config.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { type RunningServer, startServer } from '../../src/server/serve.ts';
import { listModels } from '../../src/store/catalog.ts';
import { createModel } from '../../src/store/create.ts';
import { parseModelfile } from '../../src/store/modelfile.ts';
import { FakeHub } from '../helpers/fake-hub.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';
import { HOSTILE_NAMES } from '../helpers/hostile-names.ts';
import { post } from './harness.ts';

const run = promisify(execFile);
const QWEN = join(projectRoot, 'test/fixtures/models/tiny-qwen2');
const LLAMA = join(projectRoot, 'test/fixtures/models/tiny-llama');
const LORA = join(projectRoot, 'test/fixtures/models/tiny-llama-lora');
const LORA_MERGED = join(projectRoot, 'test/fixtures/models/tiny-llama-lora-merged');
// Ollama's published Llama 3 template (test/fixtures/ollama-templates/README.md says where it comes from).
const LLAMA3_TEMPLATE = readFileSync(
  join(projectRoot, 'test/fixtures/ollama-templates/llama3-instruct.gotmpl'),
  'utf8',
);

let root = '';
let server: RunningServer;
let ollama: Ollama;
const hub = new FakeHub();
const savedEnv = { ...process.env };

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-store-api-'));
  await hub.start();
  hub.repos.set('acme/tiny-llama', { commit: 'e'.repeat(40), files: readModelFolder(LLAMA) });
  Object.assign(process.env, {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    HF_ENDPOINT: hub.endpoint,
  });
  addToHubCache(join(root, 'hf'), 'pagoda-test/tiny-qwen2', readModelFolder(QWEN));
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models: ['pagoda-test/tiny-qwen2'] };
  server = await startServer(config, { log: () => {} }, () => {});
  await server.ready;
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.shutdown();
  await hub.stop();
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

const names = async () => (await ollama.list()).models.map((m) => m.name).sort();

test('the ollama client pulls from the (imitated) Hub with streamed progress, then the model is listed and runs', async () => {
  const events = [];
  for await (const e of await ollama.pull({ model: 'acme/tiny-llama', stream: true })) events.push(e);
  assert.equal(events[0]!.status, 'pulling manifest');
  assert.equal(events.at(-1)!.status, 'success');
  const weights = events.find((e) => e.status === 'pulling model.safetensors' && e.completed === e.total);
  assert.ok(weights && weights.total > 0 && weights.digest.startsWith('sha256:'), JSON.stringify(events));
  assert.ok((await names()).includes('acme/tiny-llama:latest'));
  // Greedy: a random draw could end at EOS before num_predict.
  const out = await ollama.generate({
    model: 'acme/tiny-llama',
    prompt: 'Once upon',
    options: { num_predict: 3, temperature: 0 },
  });
  assert.equal(out.eval_count, 3);
  // Not streamed, and errors as Ollama's {error}.
  assert.deepEqual(await ollama.pull({ model: 'acme/tiny-llama' }), { status: 'success' });
  await assert.rejects(ollama.pull({ model: 'acme/missing' }), (err: { status_code: number; error: string }) => {
    assert.equal(err.status_code, 404);
    assert.match(err.error, /acme\/missing: revision main not found on the Hugging Face Hub/);
    return true;
  });
  // Streamed, the failure arrives as a final {error} object, which the client raises.
  await assert.rejects(async () => {
    for await (const _ of await ollama.pull({ model: 'acme/missing', stream: true })) {
    }
  }, /acme\/missing: revision main not found on the Hugging Face Hub/);
});

test('create with a Go TEMPLATE from a real Ollama template; show, copy, tags and delete with the ollama client', async () => {
  const created = await ollama.create({
    model: 'llama3-style',
    from: 'pagoda-test/tiny-qwen2',
    template: LLAMA3_TEMPLATE,
    system: 'You are terse.',
    parameters: { temperature: 0, num_predict: 4, stop: ['<|eot_id|>'] },
    license: 'MIT',
  });
  assert.equal(created.status, 'success');
  const show = await ollama.show({ model: 'llama3-style' });
  assert.equal(show.template, LLAMA3_TEMPLATE);
  assert.equal(show.system, 'You are terse.');
  assert.equal(show.license, 'MIT');
  assert.match(show.parameters, /^temperature 0$/m);
  assert.match(show.parameters, /^stop "<\|eot_id\|>"$/m);
  assert.match(show.modelfile, /^FROM pagoda-test\/tiny-qwen2$/m);

  // The chat prompt is the Go template's rendering (with the stored system prompt), not the model's Jinja template.
  const messages = [{ role: 'user', content: 'Hello there' }];
  const chat = await ollama.chat({ model: 'llama3-style', messages });
  const config = loadModelConfig(QWEN);
  const tokenizer = loadTokenizer(QWEN, loadGenerationConfig(QWEN, config));
  const rendered = new OllamaTemplate(LLAMA3_TEMPLATE).render([
    { role: 'system', content: 'You are terse.' },
    ...messages,
  ]);
  assert.ok(rendered.startsWith('<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>'));
  assert.equal(chat.prompt_eval_count, tokenizer.encode(rendered, { addSpecialTokens: true }).length);
  assert.ok(chat.eval_count <= 4, 'num_predict from the stored parameters');

  assert.deepEqual(await ollama.copy({ source: 'llama3-style', destination: 'team/llama3-style:v2' }), {
    status: 'success',
  });
  assert.ok((await names()).includes('team/llama3-style:v2'));
  assert.equal((await ollama.show({ model: 'team/llama3-style:v2' })).template, LLAMA3_TEMPLATE);

  assert.deepEqual(await ollama.delete({ model: 'team/llama3-style:v2' }), { status: 'success' });
  assert.ok(!(await names()).includes('team/llama3-style:v2'));
  await assert.rejects(
    ollama.delete({ model: 'team/llama3-style:v2' }),
    (err: { status_code: number }) => err.status_code === 404,
  );
  await assert.rejects(
    ollama.show({ model: 'team/llama3-style:v2' }),
    (err: { status_code: number }) => err.status_code === 404,
  );
  await assert.rejects(
    ollama.create({ model: 'x', from: 'pagoda-test/tiny-qwen2', template: '{{ if .System }}' }),
    (err: { status_code: number; error: string }) =>
      err.status_code === 400 && /TEMPLATE is not a valid Go template: unclosed/.test(err.error),
  );
  await assert.rejects(
    ollama.create({ model: 'x', from: 'nothing-here' }),
    (err: { status_code: number }) => err.status_code === 404,
  );
});

test('create from Modelfile text (the older form of the request); separate fields override it', async () => {
  const modelfile = [
    'FROM pagoda-test/tiny-qwen2',
    'PARAMETER temperature 0.5',
    'PARAMETER stop "<|end|>"',
    'SYSTEM """Short answers."""',
    'MESSAGE user Hi',
  ].join('\n');
  const res = await post(`${server.url}/api/create`, {
    model: 'from-text',
    modelfile,
    parameters: { stop: ['###'] },
    stream: false,
  });
  assert.deepEqual(res.json, { status: 'success' });
  const show = await ollama.show({ model: 'from-text' });
  assert.equal(show.system, 'Short answers.');
  assert.match(show.parameters, /^temperature 0.5$/m);
  assert.match(show.parameters, /^stop "###"$/m);
  assert.doesNotMatch(show.parameters, /<\|end\|>/);
  assert.deepEqual(show.messages, [{ role: 'user', content: 'Hi' }]);
  assert.ok((await names()).includes('from-text:latest'));
  // The MESSAGEs open the first turn only: a generate going on from its `context` does not repeat them.
  const tokenizer = loadTokenizer(QWEN, loadGenerationConfig(QWEN, loadModelConfig(QWEN)));
  const first = await ollama.generate({ model: 'from-text', prompt: 'P1', options: { num_predict: 2 } });
  const second = await ollama.generate({
    model: 'from-text',
    prompt: 'P2',
    context: first.context,
    options: { num_predict: 2 },
  });
  const turns = (ids: number[]) => tokenizer.decode(ids).split('<|im_start|>user\nHi<|im_end|>').length - 1;
  assert.equal(turns(first.context), 1);
  assert.equal(turns(second.context), 1);
  assert.match(tokenizer.decode(second.context), /P1[\s\S]*P2/);

  const bad = await post(`${server.url}/api/create`, {
    model: 'x',
    modelfile: 'FROM pagoda-test/tiny-qwen2\nPARAMETER warmth 3',
  });
  assert.equal(bad.status, 400);
  assert.equal(
    bad.json.error,
    'modelfile:2: unknown parameter "warmth" (pagoda knows num_ctx, num_predict, temperature, top_k, top_p, min_p, seed, stop, repeat_penalty, presence_penalty, frequency_penalty, repeat_last_n, typical_p, mirostat, mirostat_tau, mirostat_eta; it accepts and ignores tfs_z, num_thread, num_gpu, main_gpu, num_batch, num_keep, use_mmap, use_mlock, low_vram, f16_kv, vocab_only, logits_all, numa, penalize_newline)',
  );
  const missing = await post(`${server.url}/api/create`, { model: 'x', modelfile: 'FROM nothing-here' });
  assert.equal(missing.status, 404);
  assert.match(String(missing.json.error), /^modelfile:1: FROM nothing-here: no such model/);
});

test('/api/tags lists a model created in the store after start-up (by the CLI), with its manifest digest', async () => {
  // Over the files of a model the server already serves, as `pagoda create` FROM it makes.
  await createModel('made-later', parseModelfile('FROM pagoda-test/tiny-qwen2\nSYSTEM hi'));
  const tags = (await ollama.list()).models;
  const digestOf = (name: string) =>
    listModels()
      .find((m) => m.name === name)!
      .digest.replace(/^sha256:/, '');
  assert.equal(tags.find((m) => m.name === 'made-later:latest')?.digest, digestOf('made-later:latest'));
  // A start-up model named from a store has its store's digest too (a Hub commit here).
  const served = tags.find((m) => m.name === 'pagoda-test/tiny-qwen2:latest');
  assert.equal(served?.digest, digestOf('pagoda-test/tiny-qwen2:latest'));
  const v1 = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
  assert.ok(v1.data.some((m) => m.id === 'made-later:latest'));
});

test('a start-up folder model (--model PATH) can be copied and built on, not deleted', async () => {
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models: [QWEN] };
  const folderServer = await startServer(config, { log: () => {} }, () => {});
  try {
    await folderServer.ready;
    const client = new Ollama({ host: folderServer.url });
    await client.copy({ source: 'tiny-qwen2', destination: 'qwen-copy' });
    await client.create({ model: 'qwen-terse', from: 'tiny-qwen2', system: 'Be terse.' });
    const terse = await client.show({ model: 'qwen-terse' });
    assert.equal(terse.system, 'Be terse.');
    assert.match(terse.modelfile, /^FROM tiny-qwen2$/m, 'the served name, never the server path');
    // The folder is the base; a request still names no path of its own (an ADAPTER folder here).
    const adapter = await post(`${folderServer.url}/api/create`, {
      model: 'evil',
      from: 'tiny-qwen2',
      modelfile: `FROM x\nADAPTER ${root}`,
    });
    assert.equal(adapter.status, 400);
    assert.match(String(adapter.json.error), /ADAPTER .*paths are not accepted here/);
    const listed = (await client.list()).models.map((m) => m.name);
    assert.ok(listed.includes('qwen-copy:latest') && listed.includes('qwen-terse:latest'), String(listed));
    const answer = await client.generate({ model: 'qwen-copy', prompt: 'x', options: { num_predict: 2 } });
    assert.equal(answer.eval_count, 2);
    const refused = await fetch(`${folderServer.url}/api/delete`, {
      method: 'DELETE',
      body: JSON.stringify({ model: 'tiny-qwen2' }),
    });
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error, /served from a folder given at start-up/);
    assert.ok(existsSync(join(QWEN, 'config.json')));
  } finally {
    await folderServer.shutdown();
  }
  // Listed after a restart too: a stored name over the folder's files is a model of its own.
  const again = await startServer(config, { log: () => {} }, () => {});
  try {
    await again.ready;
    const listed = (await new Ollama({ host: again.url }).list()).models.map((m) => m.name);
    assert.ok(listed.includes('qwen-copy:latest') && listed.includes('tiny-qwen2'), String(listed));
  } finally {
    await again.shutdown();
  }
});

test("ollama create's upload: a GGUF sent to /api/blobs (digest checked) and named in /api/create's files, then served", async () => {
  const gguf = join(root, 'tiny-llama.gguf');
  convertToGguf(LLAMA, gguf, 'f32');
  const bytes = readFileSync(gguf);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const blob = (d: string, init: RequestInit = {}) => fetch(`${server.url}/api/blobs/${d}`, init);
  assert.equal((await blob(digest, { method: 'HEAD' })).status, 404);
  const wrong = `sha256:${'0'.repeat(64)}`;
  const mismatch = await blob(wrong, {
    method: 'POST',
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(mismatch.status, 400);
  assert.match(
    String(((await mismatch.json()) as { error: string }).error),
    /^digest mismatch: the body's is sha256:[0-9a-f]{64}, not sha256:0{64}$/,
  );
  assert.equal((await blob(wrong, { method: 'HEAD' })).status, 404, 'nothing kept of a mismatched upload');
  // The body is read as it is whatever the content type says (Ollama's Go client sends application/json).
  assert.equal(
    (await blob(digest, { method: 'POST', body: bytes, headers: { 'content-type': 'application/json' } })).status,
    201,
  );
  assert.equal((await blob(digest, { method: 'HEAD' })).status, 200);
  assert.equal((await blob(digest, { method: 'POST', body: bytes })).status, 200, 'already there');
  assert.equal((await blob('sha256:nothex', { method: 'HEAD' })).status, 400);

  // Removing another model takes its own blob only, not one uploaded for a create still to come.
  await post(`${server.url}/api/copy`, { source: 'pagoda-test/tiny-qwen2', destination: 'short-lived' });
  const deleted = await fetch(`${server.url}/api/delete`, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'short-lived' }),
  });
  assert.equal(deleted.status, 200);
  assert.equal((await blob(digest, { method: 'HEAD' })).status, 200, 'the upload survives an unrelated delete');

  const created = await post(`${server.url}/api/create`, {
    model: 'uploaded',
    files: { 'tiny-llama.bin': digest },
    parameters: { temperature: 0 },
    stream: false,
  });
  assert.deepEqual(created.json, { status: 'success' });
  const show = await ollama.show({ model: 'uploaded' });
  assert.equal(show.details.format, 'gguf');
  assert.match(show.parameters, /^temperature 0$/m);
  const golden = JSON.parse(readFileSync(join(LLAMA, 'golden.json'), 'utf8')).prompts[0];
  const r = await ollama.generate({ model: 'uploaded', prompt: golden.text, raw: true, options: { num_predict: 4 } });
  assert.equal(r.eval_count, 4);

  const text = Buffer.from('not a model');
  const textDigest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
  assert.equal((await blob(textDigest, { method: 'POST', body: text })).status, 201);
  const refusals: [unknown, number, RegExp][] = [
    [
      { 'a.gguf': digest, 'b.gguf': digest },
      400,
      /: files: one GGUF file, or a model folder's config\.json and \.safetensors weights \(got a\.gguf, b\.gguf\)$/,
    ],
    [
      { 'model.safetensors': digest },
      400,
      /^\/api\/create: files: one GGUF file, or a model folder's config\.json and \.safetensors weights \(got model\.safetensors\)$/,
    ],
    [
      { 'config.json': digest, '../model.safetensors': digest },
      400,
      /: files: "\.\.\/model\.safetensors" is not a plain file name$/,
    ],
    [{ 'x.gguf': 'sha256:1234' }, 400, /^files\["x\.gguf"\]: "sha256:1234" is not a digest/],
    [{ 'x.gguf': textDigest }, 400, /: blob sha256:[0-9a-f]{64} is not a GGUF file$/],
    [{ 'x.gguf': `sha256:${'f'.repeat(64)}` }, 404, /: blob sha256:f{64} is not in the store \(upload it first\)$/],
  ];
  for (const [files, status, message] of refusals) {
    const res = await post(`${server.url}/api/create`, { model: 'nope', files, stream: false });
    assert.equal(res.status, status, JSON.stringify(files));
    assert.match(String(res.json.error), message, JSON.stringify(files));
  }
});

test("ollama create's upload of a safetensors folder: each file a blob, served from their folder, removed with the model", async () => {
  const files: Record<string, string> = {};
  for (const name of [
    'config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
    'chat_template.jinja',
  ]) {
    const bytes = readFileSync(join(LLAMA, name));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const sent = await fetch(`${server.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
    assert.equal(sent.status, 201, name);
    files[name] = digest;
  }
  const created = await post(`${server.url}/api/create`, { model: 'uploaded-folder', files, stream: false });
  assert.deepEqual(created.json, { status: 'success' });
  const show = await ollama.show({ model: 'uploaded-folder' });
  assert.equal(show.details.format, 'safetensors');
  const golden = JSON.parse(readFileSync(join(LLAMA, 'golden.json'), 'utf8')).prompts[0];
  const body = { model: 'uploaded-folder', prompt: golden.text, max_tokens: golden.greedy_ids.length, temperature: 0 };
  const completed = await post(`${server.url}/v1/completions`, body);
  assert.equal((completed.json.choices as { text: string }[])[0]!.text, golden.greedy_text, 'the golden greedy text');
  const blobs = join(root, 'models', 'blobs');
  const blobFile = (d: string) => join(blobs, d.replace(':', '-'));
  assert.ok(
    Object.values(files).every((d) => existsSync(blobFile(d))),
    'the uploads became blobs',
  );

  // The same files again under another name share the folder; removing one model keeps what the other uses.
  await post(`${server.url}/api/create`, { model: 'uploaded-twice', files, stream: false });
  assert.equal(readdirSync(join(root, 'models', 'folders')).length, 1, 'one folder for both');
  const remove = (model: string) =>
    fetch(`${server.url}/api/delete`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model }),
    });
  assert.equal((await remove('uploaded-folder')).status, 200);
  assert.ok(
    Object.values(files).every((d) => existsSync(blobFile(d))),
    'still used by uploaded-twice',
  );
  assert.equal(
    (await ollama.generate({ model: 'uploaded-twice', prompt: 'x', options: { num_predict: 1 } })).eval_count,
    1,
  );
  assert.equal((await remove('uploaded-twice')).status, 200);
  assert.ok(
    Object.values(files).every((d) => !existsSync(blobFile(d))),
    'the last model gone, its blobs go',
  );
  assert.deepEqual(readdirSync(join(root, 'models', 'folders')), [], 'and its folder');
});

test("ollama create's ADAPTER upload: a PEFT LoRA folder merged as the model loads, as if merged beforehand", async () => {
  const upload = async (path: string) => {
    const bytes = readFileSync(path);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const sent = await fetch(`${server.url}/api/blobs/${digest}`, { method: 'POST', body: bytes });
    assert.ok(sent.status === 201 || sent.status === 200, `${path}: ${sent.status}`);
    return digest;
  };
  const folder = async (dir: string, names: string[], from: Record<string, string> = {}) => {
    const files: Record<string, string> = {};
    for (const name of names) files[name] = await upload(join(from[name] ?? dir, name));
    return files;
  };
  const model = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  const base = await folder(LLAMA, model);
  const adapters = await folder(LORA, ['adapter_config.json', 'adapter_model.safetensors']);
  // The reference: tiny-llama with the weights numpy merged (test/fixtures/generate-lora.py).
  const merged = await folder(LLAMA, model, { 'model.safetensors': LORA_MERGED });
  const create = (name: string, body: Record<string, unknown>) =>
    post(`${server.url}/api/create`, { model: name, stream: false, ...body });
  assert.deepEqual((await create('tuned', { files: base, adapters })).json, { status: 'success' });
  assert.deepEqual((await create('merged', { files: merged })).json, { status: 'success' });
  const greedy = async (name: string) => {
    const body = { model: name, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
    return ((await post(`${server.url}/v1/completions`, body)).json.choices as { text: string }[])[0]!.text;
  };
  assert.deepEqual((await create('plain', { files: base })).json, { status: 'success' });
  const tuned = await greedy('tuned');
  assert.equal(tuned, await greedy('merged'));
  assert.notEqual(tuned, await greedy('plain'), 'the adapter changes the answer');
  assert.equal(
    (await ollama.show({ model: 'tuned' })).modelfile.includes('# ADAPTER uploaded: adapter_config.json'),
    true,
  );
  const refused = await create('bad', {
    files: base,
    adapters: { 'adapter_config.json': adapters['adapter_config.json']! },
  });
  assert.equal(refused.status, 400);
  assert.match(String(refused.json.error), /adapter_model\.safetensors/);
  for (const name of ['tuned', 'merged', 'plain', 'bad']) await ollama.delete({ model: name }).catch(() => {});
  const blobFile = (d: string) => join(root, 'models', 'blobs', d.replace(':', '-'));
  assert.ok(
    Object.values(adapters).every((d) => !existsSync(blobFile(d))),
    'the adapter blobs go with the model',
  );
});

test('every route that takes a model name refuses names that could escape the store', async () => {
  const call = (method: string, path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  for (const [name] of HOSTILE_NAMES) {
    const requests: [string, string, unknown, number[]][] = [
      ['POST', '/api/pull', { model: name }, [400]],
      ['POST', '/api/create', { model: name, from: 'pagoda-test/tiny-qwen2' }, [400]],
      ['POST', '/api/create', { model: 'fine', from: name }, [400]],
      ['POST', '/api/copy', { source: 'pagoda-test/tiny-qwen2', destination: name }, [400]],
      ['POST', '/api/copy', { source: name, destination: 'fine' }, [400]],
      ['DELETE', '/api/delete', { model: name }, [400]],
      ['POST', '/api/show', { model: name }, [400, 404]],
      ['POST', '/api/generate', { model: name, prompt: 'x' }, [400, 404]],
      ['POST', '/api/chat', { model: name, messages: [] }, [400, 404]],
      ['POST', '/v1/chat/completions', { model: name, messages: [{ role: 'user', content: 'x' }] }, [400, 404]],
    ];
    for (const [method, path, body, statuses] of requests) {
      const res = await call(method, path, body);
      const json = (await res.json()) as { error: unknown };
      assert.ok(
        statuses.includes(res.status),
        `${method} ${path} ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(json)}`,
      );
      assert.ok(json.error, 'an error body');
    }
  }
  assert.ok(!existsSync(join(root, 'fine')));
  assert.deepEqual(
    (await names()).filter((n) => n.startsWith('fine')),
    [],
  );
});

test('interactive pagoda run talks to the running server, and pagoda ps lists what it loaded', async () => {
  const messages = [{ role: 'user', content: 'Hi' }];
  const expected = (await ollama.chat({ model: 'llama3-style', messages, options: { temperature: 0 } })).message
    .content;
  const env = { ...process.env, PAGODA_HOST: server.url, TERM: 'dumb' };
  const pagoda = join(projectRoot, 'bin/pagoda.mjs');
  const steps = [
    ['expect', '>>> $', 60],
    ['send', 'Hi\r'],
    ['expect', '\n\n>>> $', 30],
    ['send', '/bye\r'],
  ];
  const { stdout } = await run(
    'python3',
    [
      join(projectRoot, 'test/helpers/pty-driver.py'),
      JSON.stringify(steps),
      process.execPath,
      pagoda,
      'run',
      'llama3-style',
    ],
    { env, timeout: 90_000 },
  );
  const result = JSON.parse(stdout) as { ok: boolean; error: string | null; output: string; code: number };
  assert.ok(result.ok, `${result.error}\n${result.output}`);
  assert.equal(result.code, 0);
  assert.ok(result.output.includes(`Hi\n${expected}\n\n>>> `), JSON.stringify({ expected, output: result.output }));
  // Nothing was loaded in the client: no KV cache line from an in-process engine.
  assert.ok(!result.output.includes('KV cache'), result.output);

  const ps = (await run(process.execPath, [pagoda, 'ps'], { env })).stdout.split('\n');
  assert.match(ps[0]!, /^NAME\s+ID\s+SIZE\s+PROCESSOR\s+UNTIL$/);
  assert.ok(
    ps.some((l) => /^llama3-style:latest\s+[0-9a-f]{12}\s+\S+ \S+\s+100% CPU\s+/.test(l)),
    ps.join('\n'),
  );
});
