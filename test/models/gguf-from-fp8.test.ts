import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { loadModel } from '../../src/models/load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { PagedSession } from '../helpers/paged-session.ts';

const fp8 = modelFixture('tiny-llama-fp8-block');
const reference = modelFixture('tiny-llama-fp8-block-dequantized');

function logits(path: string): Float32Array {
  const model = loadModel(path, new CpuBackend({ threads: 1 }));
  return new PagedSession(model).step([{ seq: 0, tokens: [1, 7, 42, 99, 3] }])[0]!;
}

test('an FP8 checkpoint converts and quantizes to GGUF as its dequantized weights do (scales left out)', {
  skip: fp8.skip || reference.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-fp8-gguf-'));
  try {
    const [a, b] = [join(dir, 'fp8.gguf'), join(dir, 'reference.gguf')];
    const converted = convertToGguf(fp8.path, a, 'f32');
    assert.equal(converted.tensors, convertToGguf(reference.path, b, 'f32').tensors);
    assert.deepEqual(logits(a), logits(b));
    quantizeToGguf(fp8.path, join(dir, 'fp8-q8.gguf'), parseQuantization('q8_0', 'test'));
    quantizeToGguf(reference.path, join(dir, 'reference-q8.gguf'), parseQuantization('q8_0', 'test'));
    assert.deepEqual(logits(join(dir, 'fp8-q8.gguf')), logits(join(dir, 'reference-q8.gguf')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
