import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pagodaAsync, pagodaBin } from '../helpers/cli.ts';
import { FakeHub } from '../helpers/fake-hub.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';

/** A fake Hub holding acme/tiny-llama, an empty HF cache, and the environment that points pagoda at both. */
async function hubWithModel() {
  const hub = await new FakeHub().start();
  const cache = mkdtempSync(join(tmpdir(), 'pagoda-hub-pull-'));
  hub.repos.set('acme/tiny-llama', {
    commit: 'f'.repeat(40),
    files: readModelFolder(join(projectRoot, 'test/fixtures/models/tiny-llama')),
  });
  const env = { ...process.env, PAGODA_HOME: cache, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(cache, 'hf') };
  const stop = async () => {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  };
  return { hub, cache, env, stop };
}

test('pagoda serve ORG/REPO downloads a Hub model it does not have, as vllm serve does, then serves it', async () => {
  const { hub, env, stop } = await hubWithModel();
  const child = spawn(process.execPath, [pagodaBin, 'serve', 'acme/tiny-llama', '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (t: string) => {
        stdout += t;
        if (/ready in [\d.]+ s/.test(stdout)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
    });
    assert.match(stderr, /acme\/tiny-llama is not here yet: pulling it from the Hugging Face Hub/);
    assert.ok(hub.requests.length > 0);
  } finally {
    child.kill('SIGKILL');
    await stop();
  }
});

test('pagoda run-batch --model ORG/REPO pulls it first', async () => {
  const { env, cache, stop } = await hubWithModel();
  try {
    const line = {
      custom_id: 'a',
      method: 'POST',
      url: '/v1/completions',
      body: { model: 'acme/tiny-llama', prompt: 'Hi', max_tokens: 3 },
    };
    writeFileSync(join(cache, 'in.jsonl'), JSON.stringify(line));
    const args = [
      'run-batch',
      '-i',
      join(cache, 'in.jsonl'),
      '-o',
      join(cache, 'out.jsonl'),
      '--model',
      'acme/tiny-llama',
    ];
    const { stderr } = await pagodaAsync(args, { env });
    assert.match(stderr, /acme\/tiny-llama is not here yet: pulling it/);
    const out = JSON.parse(readFileSync(join(cache, 'out.jsonl'), 'utf8'));
    assert.equal(out.response.status_code, 200);
  } finally {
    await stop();
  }
});
