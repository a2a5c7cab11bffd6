import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { clientThreads, embedInputs } from '../../../src/cli/bench/embed.ts';
import { throughServer } from '../../../src/cli/commands/bench-embed.ts';
import { loadPoolingEngine } from '../../../src/engine/pooling-load.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { pagodaSync } from '../../helpers/cli.ts';
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
    const r = pagodaSync(args, {
      cwd: dir,
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

test('client threads: 16 clients each, at most 4, two cores left to the server, at least one', () => {
  assert.equal(clientThreads(64, 16), 4);
  assert.equal(clientThreads(20, 16), 2);
  assert.equal(clientThreads(64, 4), 2);
  assert.equal(clientThreads(64, 2), 1);
  assert.equal(clientThreads(1, 64), 1);
});

test('clients spread over threads send every input once through the server', async () => {
  const loaded = await loadPoolingEngine(join(projectRoot, 'test/fixtures/models/tiny-bert'), { device: 'cpu' });
  try {
    const inputs = embedInputs(loaded.config.vocabSize, { numInputs: 30, inputLen: [4, 20], seed: 1 });
    const before = loaded.engine.stats().promptTokens;
    const r = await throughServer(loaded, inputs, 7, 3);
    assert.equal(r.inputs, 30);
    assert.ok(r.steps > 0 && r.seconds > 0);
    // The server's count: each input's tokens exactly once.
    assert.equal(
      loaded.engine.stats().promptTokens - before,
      inputs.reduce((n, x) => n + x.length, 0),
    );
  } finally {
    await loaded.engine.shutdown();
  }
});
