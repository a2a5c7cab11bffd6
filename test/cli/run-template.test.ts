import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { loadChatTemplate } from '../../src/loader/chat-template.ts';
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
  const bin = join(projectRoot, 'bin/pagoda.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'run', ...args], {
    env: { ...process.env, ...env },
  });
  return stdout;
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
