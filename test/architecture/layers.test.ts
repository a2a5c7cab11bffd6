import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ALLOWED, importsOf, layerViolations, treeViolations } from './layers.ts';

const SRC = join(import.meta.dirname, '../../src');

test('no folder of src/ imports a folder above it', () => {
  assert.deepEqual(treeViolations(SRC), []);
});

test('every folder of src/ has a place in the layer table', () => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory());
  for (const f of folders) assert.ok(f.name in ALLOWED, `src/${f.name}/ is missing from ALLOWED`);
});

test('an upward import is reported with both ends', () => {
  const file = join(SRC, 'backend/cuda/graphs.ts');
  const source = "import type { StepBatch } from '../../runner/step-batch.ts';\nimport { x } from './driver.ts';";
  assert.deepEqual(layerViolations(SRC, file, source), [
    'backend/cuda/graphs.ts imports runner/step-batch.ts (backend/ may not import runner/)',
  ]);
});

test('dynamic and side-effect imports are seen too', () => {
  const src = "await import('../engine/engine.ts');\nimport '../server/app.ts';\nexport { y } from './y.ts';";
  assert.deepEqual(importsOf(src), ['../engine/engine.ts', '../server/app.ts', './y.ts']);
  const file = join(SRC, 'models/llama.ts');
  assert.equal(layerViolations(SRC, file, src).length, 2);
});
