import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { encodeSafetensors, openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';

const fixture = modelFixture('tiny-gpt2');

test('GPT-2 weights named without the "transformer." prefix (the original upload) load the same model', {
  skip: fixture.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-gpt2-'));
  try {
    cpSync(fixture.path, dir, { recursive: true });
    const src = openSafetensors(fixture.path);
    const tensors = src.names().map((name) => {
      const t = src.get(name);
      return { name: name.replace(/^transformer\./, ''), shape: [...t.shape], data: toFloat32(t) };
    });
    src.close();
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    const prompt = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts[0];
    const [logits] = new PagedSession(loadModel(dir, new CpuBackend())).step([{ seq: 0, tokens: prompt.input_ids }]);
    assert.ok(maxAbsDiff(logits!, prompt.last_logits) < 1e-4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
