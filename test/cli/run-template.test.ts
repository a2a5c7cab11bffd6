import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { loadChatTemplate } from '../../src/loader/chat-template.ts';
import { createModel } from '../../src/store/create.ts';
import { parseModelfile } from '../../src/store/modelfile.ts';
import { pagodaAsync } from '../helpers/cli.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';

const QWEN = join(projectRoot, 'test/fixtures/models/tiny-qwen2');
let root = '';
let env: Record<string, string> = {};

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-run-template-'));
  env = { PAGODA_HOME: root, PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };
  addToHubCache(env.HF_HUB_CACHE!, 'pagoda-test/tiny-qwen2', readModelFolder(QWEN));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function pagodaRun(args: string[]): Promise<string> {
  const { stdout } = await pagodaAsync(['run', ...args], {
    env: { ...process.env, ...env },
  });
  return stdout;
}

/** Runs `fn` with the test's store and cache in process.env (the loader reads them at call time). */
async function withEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    process.env = saved;
  }
}

/** What the engine writes for these prompt ids, as `run` prints it, and how many tokens it generated. */
async function generate(loaded: LoadedEngine, prompt: number[], params: Partial<SamplingParams>) {
  let text = '';
  let tokens = 0;
  for await (const out of loaded.engine.generate({ prompt, params })) {
    for (const d of out.outputs) {
      text += d.text;
      tokens += d.tokenIds.length;
    }
  }
  return { text: text.endsWith('\n') ? text : `${text}\n`, tokens };
}

test('one-shot run answers through the chat template; --raw continues the plain prompt', async () => {
  const loaded = loadEngine(QWEN, { log: () => {} });
  const template = loadChatTemplate(QWEN)!;
  const rendered = template.render([{ role: 'user', content: 'Hi there' }], { addGenerationPrompt: true });
  assert.equal(rendered, '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n');
  const greedy = { temperature: 0, maxTokens: 8, ignoreEos: true };
  const chat = await generate(loaded, loaded.tokenizer.encode(rendered, { addSpecialTokens: false }), greedy);
  const raw = await generate(loaded, loaded.tokenizer.encode('Hi there'), greedy);
  await loaded.engine.shutdown(true);
  assert.notEqual(chat.text, raw.text, 'the two prompts lead to different answers, so the check below can fail');

  assert.equal(await pagodaRun([QWEN, 'Hi there', '--max-tokens', '8', '--ignore-eos']), chat.text);
  assert.equal(await pagodaRun([QWEN, 'Hi there', '--max-tokens', '8', '--ignore-eos', '--raw']), raw.text);
});

test('run takes num_predict, temperature and SYSTEM from the Modelfile; a flag overrides only when given', async () => {
  const modelfile = [
    'FROM pagoda-test/tiny-qwen2',
    'PARAMETER num_predict 8',
    'PARAMETER temperature 1.5',
    'PARAMETER seed 11',
    'SYSTEM Be brief.',
  ].join('\n');
  const { sampled, greedy } = await withEnv(async () => {
    await createModel('brief', parseModelfile(modelfile), { env });
    const loaded = loadEngine('brief', { log: () => {} });
    const rendered = loadChatTemplate(QWEN)!.render(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      { addGenerationPrompt: true },
    );
    const ids = loaded.tokenizer.encode(rendered, { addSpecialTokens: false });
    // The stored parameters are the engine's defaults: a request that sets nothing samples with them.
    const result = {
      sampled: await generate(loaded, ids, { ignoreEos: true }),
      greedy: await generate(loaded, ids, { ignoreEos: true, temperature: 0 }),
    };
    await loaded.engine.shutdown(true);
    return result;
  });
  assert.equal(sampled.tokens, 8);
  assert.equal(greedy.tokens, 8);
  assert.notEqual(sampled.text, greedy.text, 'temperature 1.5 (seed 11) samples something else than greedy');

  assert.equal(await pagodaRun(['brief', 'Hi', '--ignore-eos']), sampled.text);
  assert.equal(await pagodaRun(['brief', 'Hi', '--ignore-eos', '--temperature', '0']), greedy.text);
});
