import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { embedInputs } from '../../../src/cli/bench/embed.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { projectRoot } from '../../helpers/fixtures.ts';

test('the embedding workload: lengths in range, ids in the vocabulary, one mulberry32 stream (the baseline redraws it)', () => {
  const w = { numInputs: 50, inputLen: [16, 40] as [number, number], seed: 3 };
  const inputs = embedInputs(1000, w);
  assert.equal(inputs.length, 50);
  const r = mulberry32(3);
  for (const x of inputs) {
    assert.equal(x.length, 16 + Math.floor(r() * 25));
    for (const id of x) assert.equal(id, Math.floor(r() * 1000));
  }
  assert.deepEqual(embedInputs(1000, w), inputs);
});

test('pagoda bench embed: offline and through /v1/embeddings with concurrent clients, table saved with --save', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-bench-embed-'));
  try {
    const model = join(projectRoot, 'test/fixtures/models/tiny-bert');
    const args = ['bench', 'embed', '--model', model, '--device', 'cpu', '--num-inputs', '24'];
    args.push('--input-len-range', '4,40', '--clients', '4', '--save', 'out.md');
    const r = spawnSync(process.execPath, [join(projectRoot, 'bin/pagoda.mjs'), ...args], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PAGODA_HOME: dir },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^offline \(engine\): embeddings\/s\s+\d/m);
    assert.match(r.stdout, /^\/v1\/embeddings, 4 clients: embeddings\/s\s+\d/m);
    const file = readFileSync(join(dir, 'out.md'), 'utf8');
    assert.match(file, /^## embed — /m);
    assert.match(file, /\| offline \(engine\) +\| \d/);
    assert.match(file, /24 inputs of 4\.\.40 random tokens/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
