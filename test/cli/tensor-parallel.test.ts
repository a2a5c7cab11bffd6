import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pagodaSync } from '../helpers/cli.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';

const home = mkdtempSync(join(tmpdir(), 'pagoda-tp-test-'));

function pagoda(args: string[], env: Record<string, string> = {}) {
  return pagodaSync(args, {
    env: { ...process.env, PAGODA_HOME: home, ...env },
  });
}

const stories = sharedFixture('models/stories260K');

test('pagoda run --tensor-parallel-size 2 --device cpu prints the golden greedy continuation of one rank', {
  skip: stories.skip,
}, () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  const r = pagoda([
    'run',
    stories.path,
    'Once upon a time',
    '--max-tokens',
    '64',
    '--device',
    'cpu',
    '--tensor-parallel-size',
    '2',
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${p.greedy_text}\n`);
  assert.match(r.stderr, /tensor parallel: 2 ranks simulated on the CPU/);
});

const tinyQwen3 = modelFixture('tiny-qwen3');

test('PAGODA_TENSOR_PARALLEL_SIZE=4 gives the text of one rank; the flag wins over it', {
  skip: tinyQwen3.skip,
}, () => {
  const args = ['run', tinyQwen3.path, 'hello there', '--max-tokens', '24', '--device', 'cpu'];
  const one = pagoda(args);
  assert.equal(one.status, 0, one.stderr);
  const four = pagoda(args, { PAGODA_TENSOR_PARALLEL_SIZE: '4' });
  assert.equal(four.status, 0, four.stderr);
  assert.match(four.stderr, /tensor parallel: 4 ranks/);
  assert.equal(four.stdout, one.stdout);
  const flag = pagoda([...args, '--tensor-parallel-size', '1'], { PAGODA_TENSOR_PARALLEL_SIZE: '4' });
  assert.doesNotMatch(flag.stderr, /tensor parallel/);
  assert.equal(flag.stdout, one.stdout);
});

test('a bad tensor-parallel size is refused in one line naming the flag or variable', { skip: tinyQwen3.skip }, () => {
  const args = ['run', tinyQwen3.path, 'hi', '--device', 'cpu'];
  const zero = pagoda([...args, '--tensor-parallel-size', '0']);
  assert.equal(zero.stderr, 'error: --tensor-parallel-size 0: expected a positive integer\n');
  const word = pagoda(args, { PAGODA_TENSOR_PARALLEL_SIZE: 'two' });
  assert.equal(word.stderr, 'error: PAGODA_TENSOR_PARALLEL_SIZE two: expected an integer\n');
  const three = pagoda([...args, '--tensor-parallel-size', '3']);
  assert.match(three.stderr, /^error: --tensor-parallel-size 3: the 4 attention heads do not divide into 3 ranks\n$/m);
  assert.equal(three.status, 1);
});
