import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import type { ModelSource } from '../../src/server/models.ts';
import { startServer } from '../../src/server/serve.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { LORA_ADAPTER as ADAPTER, LORA_BASE as BASE, mergedReference } from '../helpers/lora-fixtures.ts';
import { post, startTestServer } from './harness.ts';

const root = mkdtempSync(join(tmpdir(), 'pagoda-lora-runtime-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('/v1/load_lora_adapter serves an adapter merged into a model; /v1/unload_lora_adapter forgets it', async () => {
  const merged = mergedReference(join(root, 'merged'));
  const [mistral, fp8] = ['tiny-mistral', 'tiny-llama-fp8-channel'].map((m) =>
    join(projectRoot, 'test/fixtures/models', m),
  );
  const flags = { port: 0, host: '127.0.0.1', model: [BASE, merged, mistral, fp8], allowRuntimeLoraUpdating: true };
  const config = resolveServeConfig(flags, { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') });
  const server = await startServer(config, { log: () => {} }, () => {});
  const load = (body: object) => post(`${server.url}/v1/load_lora_adapter`, body);
  const unload = (body: object) => post(`${server.url}/v1/unload_lora_adapter`, body);
  const greedy = async (model: string) => {
    const body = { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
    const res = await post(`${server.url}/v1/completions`, body);
    return res.status === 200 ? (res.json.choices as { text: string }[])[0]!.text : res.status;
  };
  const error = (res: { status: number; json: Record<string, unknown> }) =>
    `${res.status} ${(res.json.error as { message: string }).message}`;
  try {
    await server.ready;
    const loaded = await load({ lora_name: 'tuned', lora_path: ADAPTER });
    assert.equal(loaded.status, 200);
    assert.equal(loaded.text, "Success: LoRA adapter 'tuned' added successfully.");
    const cards = (await fetch(`${server.url}/v1/models`).then((r) => r.json())).data as Record<string, unknown>[];
    assert.deepEqual(
      cards.filter((c) => c.id === 'tuned').map((c) => c.parent),
      ['tiny-llama'],
    );
    const tuned = await greedy('tuned');
    assert.equal(tuned, await greedy('merged'));
    assert.notEqual(tuned, await greedy('tiny-llama'));

    assert.match(
      error(await load({ lora_name: 'tuned', lora_path: ADAPTER })),
      /^400 .*'tuned' has already been loaded/,
    );
    assert.equal((await load({ lora_name: 'tuned', lora_path: ADAPTER, load_inplace: true })).status, 200);
    assert.equal(await greedy('tuned'), tuned, 'the reloaded adapter serves the same weights');
    assert.match(error(await load({ lora_name: 'merged', lora_path: ADAPTER })), /^400 "merged" already names a model/);
    assert.match(
      error(await load({ lora_name: 'tiny-llama:latest', lora_path: ADAPTER })),
      /^400 "tiny-llama:latest" already names a model \("tiny-llama"\)$/,
      'an alias is taken too',
    );
    assert.match(
      error(await load({ lora_name: 'other', lora_path: ADAPTER, base_model_name: 'tiny-mistral' })),
      /^400 lora_path: .*tiny-llama-lora.*adapter_model\.safetensors: .*k_proj\.weight is \[\d+, 64\] in the model, but the adapter's factors make/,
      'an adapter for another shape is refused before any load',
    );
    assert.match(
      error(await load({ lora_name: 'other', lora_path: BASE })),
      /^400 lora_path: .*tiny-llama: not a LoRA adapter folder \(no adapter_config\.json\)$/,
    );
    assert.match(
      error(await load({ lora_name: 'other', lora_path: ADAPTER, base_model_name: 'tuned' })),
      /^400 base_model_name: "tuned" is itself an adapted model$/,
    );
    assert.match(error(await load({ lora_name: 'other', lora_path: ADAPTER, base_model_name: 'nope' })), /^404 /);
    assert.match(
      error(await load({ lora_name: 'other', lora_path: ADAPTER, base_model_name: 'tiny-llama-fp8-channel' })),
      /^400 lora_path: .*tiny-llama-fp8-channel is an FP8 checkpoint; a LoRA adapter merges only into 16- or 32-bit weights$/,
    );

    assert.equal((await unload({ lora_name: 'tuned' })).text, "Success: LoRA adapter 'tuned' removed successfully.");
    assert.equal(await greedy('tuned'), 404);
    assert.match(error(await unload({ lora_name: 'tuned' })), /^404 The lora adapter 'tuned' cannot be found\.$/);
    assert.match(error(await unload({ lora_name: 'merged' })), /^404 /, 'a plain model is not an adapter');
    assert.equal(typeof (await greedy('merged')), 'string');
  } finally {
    await server.shutdown();
  }
});

test('the runtime LoRA routes answer 403 unless the server allows them', async () => {
  const source: ModelSource = {
    inspect: () => Promise.reject(new Error('not reached')),
    load: () => Promise.reject(new Error('not reached')),
  };
  const server = await startTestServer(source, []);
  try {
    for (const route of ['load_lora_adapter', 'unload_lora_adapter']) {
      const res = await post(`${server.url}/v1/${route}`, { lora_name: 'x', lora_path: ADAPTER });
      assert.equal(res.status, 403);
      assert.match(
        (res.json.error as { message: string }).message,
        /--allow-runtime-lora-updating \(PAGODA_ALLOW_RUNTIME_LORA_UPDATING=1\)/,
      );
    }
  } finally {
    await server.close();
  }
  assert.equal(resolveServeConfig({}, { PAGODA_ALLOW_RUNTIME_LORA_UPDATING: 'true' }).runtimeLoraUpdating, true);
  assert.equal(resolveServeConfig({}, {}).runtimeLoraUpdating, false);
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_ALLOW_RUNTIME_LORA_UPDATING: 'yes' }),
    /^UserError: PAGODA_ALLOW_RUNTIME_LORA_UPDATING: "yes" is not one of 1, 0, true, false$/,
  );
});
