import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FakeHub } from '../helpers/fake-hub.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';

const run = promisify(execFile);

test('pagoda pull on a terminal draws a progress bar per file and lands the model in the HF cache', async () => {
  const hub = await new FakeHub().start();
  const cache = mkdtempSync(join(tmpdir(), 'pagoda-pull-tty-'));
  try {
    const files = readModelFolder(join(projectRoot, 'test/fixtures/models/tiny-llama'));
    hub.repos.set('acme/tiny-llama', { commit: 'e'.repeat(40), files });
    const { stdout } = await run(
      'python3',
      [
        join(projectRoot, 'test/helpers/pty-driver.py'),
        JSON.stringify([['expect', 'pulled acme/tiny-llama at eeeeeeeeeeee', 60]]),
        process.execPath,
        join(projectRoot, 'bin/pagoda.mjs'),
        'pull',
        'acme/tiny-llama',
      ],
      { env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, TERM: 'xterm' }, timeout: 90_000 },
    );
    const result = JSON.parse(stdout) as { ok: boolean; error: string | null; output: string; code: number };
    assert.ok(result.ok, `${result.error}\n${result.output}`);
    assert.equal(result.code, 0);
    assert.match(result.output, /model\.safetensors \|█+\| 100% 1\.0 MB\/1\.0 MB/);
    assert.match(result.output, /config\.json \|█+\| 100%/);
    const snapshot = join(cache, 'models--acme--tiny-llama', 'snapshots', 'e'.repeat(40));
    assert.deepEqual(readFileSync(join(snapshot, 'model.safetensors')), files['model.safetensors']);
  } finally {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  }
});
