import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { resolveEntries, startServer } from '../../src/server/serve.ts';
import { LORA_ADAPTER as ADAPTER, LORA_BASE as BASE, mergedReference } from '../helpers/lora-fixtures.ts';
import { post } from './harness.ts';

const root = mkdtempSync(join(tmpdir(), 'pagoda-lora-modules-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('--lora-modules: the first model with the adapter merged, served under its own name beside the base', async () => {
  const merged = mergedReference(join(root, 'merged'));
  const flags = { port: 0, host: '127.0.0.1', model: [BASE, merged], loraModules: [`tuned=${ADAPTER}`] };
  const config = resolveServeConfig(flags, { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') });
  const server = await startServer(config, { log: () => {} }, () => {});
  try {
    await server.ready;
    const listed = await fetch(`${server.url}/v1/models`).then((r) => r.json());
    const card = (id: string) => (listed.data as Record<string, unknown>[]).find((m) => m.id === id);
    // vLLM's cards: an adapter's root is its folder and its parent the base; a base model has no parent.
    assert.deepEqual([card('tuned')?.root, card('tuned')?.parent], [ADAPTER, 'tiny-llama']);
    assert.deepEqual([card('tiny-llama')?.root, card('tiny-llama')?.parent], [BASE, null]);
    const greedy = async (model: string) => {
      const body = { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 };
      return ((await post(`${server.url}/v1/completions`, body)).json.choices as { text: string }[])[0]!.text;
    };
    const tuned = await greedy('tuned');
    assert.equal(tuned, await greedy('merged'));
    const base = await greedy('tiny-llama');
    assert.notEqual(tuned, base);
    assert.equal(await greedy(BASE), base, "the base's path still names the base");
  } finally {
    await server.shutdown();
  }
  assert.throws(
    () => resolveServeConfig({ loraModules: ['no-equals-sign'] }, {}),
    /^UserError: --lora-modules no-equals-sign: expected NAME=FOLDER$/,
  );
  // An adapter whose shapes are not the first model's is refused at start-up, before anything loads.
  const mistral = join(BASE, '../tiny-mistral');
  const env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };
  assert.throws(
    () => resolveEntries(resolveServeConfig({ model: [mistral], loraModules: [`tuned=${ADAPTER}`] }, env)),
    /^UserError: .*tiny-llama-lora.*k_proj\.weight is \[\d+, 64\] in the model, but the adapter's factors make/,
  );
  // Random weights (--load-format dummy) take no adapter: said at start-up, not at the first request.
  const dummy = resolveServeConfig({ model: [BASE], loraModules: [`tuned=${ADAPTER}`], loadFormat: 'dummy' }, env);
  assert.throws(
    () => resolveEntries(dummy),
    /^UserError: .*tiny-llama-lora: an adapter needs real weights, not --load-format dummy$/,
  );
});
