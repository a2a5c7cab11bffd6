import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pagodaSync } from '../helpers/cli.ts';

const root = mkdtempSync(join(tmpdir(), 'pagoda-bench-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** `pagoda bench latency` on the demo model, as small as it goes, run from `root` (which has a bench/RESULTS.md). */
function latency(extra: string[]) {
  const args = ['bench', 'latency', '--input-len', '4', '--output-len', '2', '--batch-size', '1'];
  args.push('--num-iters-warmup', '0', '--num-iters', '1', '--kv-cache-memory', '8MiB', ...extra);
  return pagodaSync(args, {
    cwd: root,
    env: { ...process.env, PAGODA_HOME: root },
  });
}

test('pagoda bench prints its table and writes a file only with --save FILE', () => {
  mkdirSync(join(root, 'bench'));
  writeFileSync(join(root, 'bench/RESULTS.md'), '# results\n');
  const printed = latency([]);
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /^ms per output token\s+\d/m);
  assert.equal(readFileSync(join(root, 'bench/RESULTS.md'), 'utf8'), '# results\n', 'nothing appended by default');

  const saved = latency(['--save', 'mine.md']);
  assert.equal(saved.status, 0, saved.stderr);
  const file = readFileSync(join(root, 'mine.md'), 'utf8');
  assert.match(file, /^## latency — /m);
  assert.match(file, /pagoda bench latency .*--save mine\.md/);
  assert.match(file, /\| avg latency s \|/);
  assert.match(saved.stderr, /appended to mine\.md/);

  const missing = latency(['--save', 'no/such/folder.md']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, `error: --save no/such/folder.md: folder ${join(root, 'no/such')} does not exist\n`);
});

test('pagoda bench throughput --speculative ngram reports the drafts and their acceptance', () => {
  const args = ['bench', 'throughput', '--num-prompts', '2', '--input-len-range', '4,8', '--output-len-range', '24,24'];
  args.push('--kv-cache-memory', '8MiB', '--temperature', '0', '--speculative', 'ngram');
  const r = pagodaSync(args, {
    cwd: root,
    env: { ...process.env, PAGODA_HOME: root },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^output tokens\s+48$/m);
  const drafted = Number(/^draft tokens\s+(\d+)$/m.exec(r.stdout)?.[1]);
  const accepted = Number(/^accepted draft tokens\s+(\d+)$/m.exec(r.stdout)?.[1]);
  assert.ok(drafted > 0 && accepted <= drafted, r.stdout);
  assert.match(r.stdout, /^acceptance\s+\d+\.\d%$/m);
});
