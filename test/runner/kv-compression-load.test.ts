import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const mistral = modelFixture('tiny-mistral');
const snapkv = { kvCompression: { method: 'snapkv' as const, budget: 64 }, device: 'cpu', log: () => {} };

test('KV compression loads a model whose forward compacts, and refuses sliding-window attention shorter than the context', {
  skip: mistral.skip,
}, () => {
  assert.equal(prepareModel(mistral.path, snapkv).runner.model.compactsKv, true);
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-sliding-'));
  try {
    for (const f of readdirSync(mistral.path))
      if (f !== 'config.json') symlinkSync(join(mistral.path, f), join(dir, f));
    const config = JSON.parse(readFileSync(join(mistral.path, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, sliding_window: 32 }));
    assert.throws(
      () => prepareModel(dir, snapkv),
      /^UserError: --kv-compression: this model's sliding-window attention \(32 tokens\) would count compressed cache entries, not positions$/,
    );
    // A window as long as the context never slides.
    assert.equal(prepareModel(dir, { ...snapkv, maxModelLen: 32 }).maxModelLen, 32);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
