import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { eventually } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
let ollama: Ollama;
before(async () => {
  server = await startServed();
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

function assertFinalStats(r: Record<string, unknown>, evalCount: number) {
  assert.equal(r.done, true);
  for (const key of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration']) {
    assert.ok(Number.isInteger(r[key]) && (r[key] as number) >= 0, `${key} is a whole number of ns`);
  }
  assert.ok((r.total_duration as number) >= (r.eval_duration as number));
  assert.ok((r.prompt_eval_count as number) > 0);
  assert.equal(r.eval_count, evalCount);
}

test('generate, not streamed: response, done_reason, counts, context', async () => {
  const r = await ollama.generate({
    model: server.model,
    prompt: 'Why is the sky blue?',
    options: { num_predict: 7, temperature: 0 },
  });
  assert.equal(r.model, server.model);
  assert.equal(typeof r.response, 'string');
  assert.equal(r.done_reason, 'length');
  assertFinalStats(r as unknown as Record<string, unknown>, 7);
  assert.equal(r.context.length, r.prompt_eval_count + 7);
});

test('generate streamed equals not streamed', async () => {
  const whole = await ollama.generate({
    model: server.model,
    prompt: 'Hello',
    options: { num_predict: 9, temperature: 0 },
  });
  const parts = await ollama.generate({
    model: server.model,
    prompt: 'Hello',
    stream: true,
    options: { num_predict: 9, temperature: 0 },
  });
  let text = '';
  let last: Record<string, unknown> = {};
  for await (const p of parts) {
    text += p.response;
    last = p as unknown as Record<string, unknown>;
  }
  assert.equal(text, whole.response);
  assertFinalStats(last, 9);
  assert.equal(last.done_reason, 'length');
});

test('chat, streamed and not, with a stop string', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Count.' },
  ];
  const base = await ollama.chat({ model: server.model, messages, options: { num_predict: 20, temperature: 0 } });
  assert.equal(base.message.role, 'assistant');
  const full = base.message.content;
  const stop = full.slice(6, 9);
  const cut = await ollama.chat({
    model: server.model,
    messages,
    options: { num_predict: 20, temperature: 0, stop: [stop] },
  });
  assert.equal(cut.message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.done_reason, 'stop');
  const parts = await ollama.chat({
    model: server.model,
    messages,
    stream: true,
    options: { num_predict: 20, temperature: 0 },
  });
  let text = '';
  for await (const p of parts) text += p.message.content;
  assert.equal(text, full);
});

test('tags, show, ps, version', async () => {
  const tags = await ollama.list();
  assert.deepEqual(
    tags.models.map((m) => m.name),
    [server.model],
  );
  assert.ok(tags.models[0].size > 0);
  assert.match(tags.models[0].digest, /^[0-9a-f]{64}$/);
  const show = await ollama.show({ model: server.model });
  assert.ok(show.template.length > 0);
  assert.ok(show.details.family);
  const info = show.model_info as unknown as Record<string, unknown>;
  assert.equal(typeof info['general.architecture'], 'string');
  await ollama.generate({ model: server.model, prompt: 'x', options: { num_predict: 1 } });
  const ps = await ollama.ps();
  assert.equal(ps.models[0].name, server.model);
  assert.ok(new Date(ps.models[0].expires_at).getTime() > Date.now());
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

test('an empty prompt loads the model; with keep_alive 0 it unloads it', async () => {
  const loaded = await ollama.generate({ model: server.model, prompt: '' });
  assert.equal(loaded.done_reason, 'load');
  assert.equal((await ollama.ps()).models.length, 1);
  const unloaded = await ollama.generate({ model: server.model, prompt: '', keep_alive: 0 });
  assert.equal(unloaded.done_reason, 'unload');
  await eventually(() => server.ctx.registry.resident().length === 0, 2000, 'unload');
  assert.equal((await ollama.ps()).models.length, 0);
});

test('errors: unknown model, invalid format schema; a num_ctx past the loaded length is lowered to it', async () => {
  await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x' }), /model "nope" not found/);
  await assert.rejects(
    ollama.chat({ model: server.model, messages: [{ role: 'user', content: 'x' }], format: { type: 'nope' } }),
    /invalid JSON schema: Unsupported type "nope"/,
  );
  const long = await ollama.generate({
    model: server.model,
    prompt: 'x',
    options: { num_ctx: 1 << 22, num_predict: 3 },
  });
  assert.equal(long.eval_count, 3);
  const small = await ollama.generate({
    model: server.model,
    prompt: 'x',
    options: { num_ctx: long.prompt_eval_count + 2 },
  });
  assert.equal(small.eval_count, 2, 'num_ctx below the loaded length bounds the answer');
});
