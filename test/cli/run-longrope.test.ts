import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pagodaSync } from '../helpers/cli.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const phi3 = modelFixture('tiny-phi3-longrope');
const home = mkdtempSync(join(tmpdir(), 'pagoda-run-longrope-'));
after(() => rmSync(home, { recursive: true, force: true }));

function pagoda(args: string[]) {
  return pagodaSync(args, {
    env: { ...process.env, PAGODA_HOME: home, PAGODA_DEVICE: 'cpu' },
  });
}

/** The first golden prompt's text and its greedy continuation in `file`. */
function golden(file: string): { text: string; greedy_ids: number[]; greedy_text: string } {
  return JSON.parse(readFileSync(join(phi3.path, file), 'utf8')).prompts[0];
}

test('pagoda run --max-model-len picks the LongRoPE factors and says which at start-up', { skip: phi3.skip }, () => {
  // Within the 64 trained positions: the short factors (golden.json).
  const short = golden('golden.json');
  let r = pagoda([
    'run',
    phi3.path,
    short.text,
    '--raw',
    '--max-tokens',
    String(short.greedy_ids.length),
    '--max-model-len',
    '64',
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${short.greedy_text}\n`);
  assert.match(
    r.stderr,
    /^LongRoPE: short factors \(max model len 64 is within original_max_position_embeddings 64\)$/m,
  );
  // The default max-model-len is max_position_embeddings (512): the long factors (golden_long.json).
  const long = golden('golden_long.json');
  r = pagoda(['run', phi3.path, long.text, '--raw', '--max-tokens', String(long.greedy_ids.length)]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${long.greedy_text}\n`);
  assert.match(r.stderr, /^LongRoPE: long factors \(max model len 512 exceeds original_max_position_embeddings 64\)$/m);
});
