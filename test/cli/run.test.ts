import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot, sharedFixture } from '../helpers/fixtures.ts';

const stories = sharedFixture('models/stories260K');
const home = mkdtempSync(join(tmpdir(), 'pagoda-run-test-'));

function pagoda(args: string[], input?: string) {
  return spawnSync(process.execPath, [join(projectRoot, 'bin/pagoda.mjs'), ...args], {
    encoding: 'utf8',
    input,
    env: { ...process.env, PAGODA_HOME: home },
  });
}

test('pagoda run stories260K prints exactly the golden greedy continuation', { skip: stories.skip }, () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  const r = pagoda(['run', stories.path, 'Once upon a time', '--max-tokens', '64']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${p.greedy_text}\n`);
  assert.match(r.stderr, /KV cache: \d+ blocks of 16 tokens .* up to \d+ concurrent tokens/);
});

test('pagoda run with a prompt only uses the demo model and says so', () => {
  const r = pagoda(['run', 'Hello there', '--max-tokens', '4', '--kv-cache-memory', '8MiB']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /demo model.*meaningless text/);
  assert.ok(r.stdout.length > 1);
});

test('pagoda run errors are one line with a non-zero exit', () => {
  const bad = pagoda(['run', 'demo', 'hi', '--top-p', 'lots']);
  assert.notEqual(bad.status, 0);
  assert.equal(bad.stderr.trim(), 'error: --top-p lots: expected a number');
  const missing = pagoda(['run', join(home, 'no-such-model'), 'hi']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /^error: .*no-such-model: no such model folder/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
});
