import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { engineOptionsFrom } from '../../src/cli/engine-options.ts';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import { createModel } from '../../src/store/create.ts';
import { formatModelfile, parseModelfile } from '../../src/store/modelfile.ts';
import { LORA_ADAPTER as ADAPTER, LORA_BASE as BASE, mergedReference } from '../helpers/lora-fixtures.ts';

let root = '';
let merged = '';
let env: Record<string, string> = {};

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-lora-'));
  env = { PAGODA_HOME: root, PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };
  // tiny-llama with the weights numpy merged (test/fixtures/generate-lora.py): the reference.
  merged = mergedReference(join(root, 'merged'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs `fn` with the test's store in process.env (the loader reads it at call time). */
function withEnv<T>(fn: () => T): T {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    process.env = saved;
  }
}

/** Twelve greedy token ids after a fixed prompt. */
async function greedy(loaded: LoadedEngine): Promise<number[]> {
  const ids: number[] = [];
  for await (const out of loaded.engine.generate({
    prompt: [1, 312, 45, 907],
    params: { temperature: 0, maxTokens: 12, ignoreEos: true },
  })) {
    for (const d of out.outputs) ids.push(...d.tokenIds);
  }
  await loaded.engine.shutdown();
  return ids;
}

const quiet = { log: () => {} };

test('--lora and a Modelfile ADAPTER: the model answers as the numpy-merged one, not as its base', async () => {
  const reference = await greedy(loadEngine(merged, quiet));
  assert.notDeepEqual(await greedy(loadEngine(BASE, quiet)), reference, 'the adapter changes the answer');
  assert.deepEqual(await greedy(loadEngine(BASE, { ...quiet, ...engineOptionsFrom({ lora: ADAPTER }) })), reference);
  const mf = parseModelfile(`FROM ${BASE}\nADAPTER ${ADAPTER}\nPARAMETER temperature 0\n`, 'Modelfile');
  const stored = await createModel('tuned', mf, { allowPaths: true, env });
  assert.deepEqual(stored.manifest.adapter, { kind: 'hf-folder', path: ADAPTER });
  assert.match(formatModelfile(stored.manifest), new RegExp(`^FROM .*\\nADAPTER ${ADAPTER}\\n`));
  assert.deepEqual(await greedy(withEnv(() => loadEngine('tuned', quiet))), reference);
  // A model made FROM it keeps the adapter.
  await createModel('tuned-2', parseModelfile('FROM tuned\nSYSTEM Be brief.\n', 'Modelfile'), {
    allowPaths: true,
    env,
  });
  assert.deepEqual(await greedy(withEnv(() => loadEngine('tuned-2', quiet))), reference);
  assert.throws(
    () => withEnv(() => loadEngine('tuned', { ...quiet, lora: ADAPTER })),
    /^UserError: --lora .*: the model already has an adapter .*; one at a time$/,
  );
});

test('ADAPTER refusals: what cannot be merged, quantize, paths over the API, dummy weights', async () => {
  const bad = join(root, 'dora');
  cpSync(ADAPTER, bad, { recursive: true });
  writeFileSync(join(bad, 'adapter_config.json'), JSON.stringify({ lora_alpha: 16, r: 4, use_dora: true }));
  const create = (text: string, opts = {}) =>
    createModel('x', parseModelfile(text, 'Modelfile'), { allowPaths: true, env, ...opts });
  await assert.rejects(create(`FROM ${BASE}\nADAPTER ${bad}\n`), /use_dora: DoRA adapters are not supported/);
  await assert.rejects(create(`FROM ${BASE}\nADAPTER ./nowhere\n`), /not a LoRA adapter folder/);
  await assert.rejects(
    create(`FROM ${BASE}\nADAPTER ${ADAPTER}\n`, { quantize: 'q8_0' }),
    /^UserError: Modelfile:2: ADAPTER with quantize: an adapter merges only into 16- or 32-bit weights/,
  );
  await createModel('plain', parseModelfile(`FROM ${BASE}\n`, 'Modelfile'), { allowPaths: true, env });
  await assert.rejects(
    create(`FROM plain\nADAPTER ${ADAPTER}\n`, { allowPaths: false }),
    /Modelfile:2: ADAPTER .*: paths are not accepted here, upload the adapter's files$/,
  );
  assert.throws(
    () => loadEngine(BASE, { ...quiet, lora: ADAPTER, loadFormat: 'dummy' }),
    /an adapter needs real weights, not --load-format dummy/,
  );
});
