import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { sharedFixture } from '../helpers/fixtures.ts';
import { kvCacheAgreement, ownStories } from '../helpers/kv-cache-agreement.ts';

const stories = sharedFixture('models/stories260K');

/**
 * A quantized cache against the f32 cache on a trained model, teacher-forced over four of its own 256-token stories.
 * Measured (bench/kv-cache-quality.ts, eight stories): q8_0 97.4% top-1 and logits relative L2 0.018, fp8 92.8% and
 * 0.049, q4_0 48.0% and 0.25. The floors sit a little under those: a cache that stored the wrong slot, scale or
 * nibble would fall far below (a q8_0 block with its scale lost gives zeros), and the order of the three follows from
 * their precision (an 8-bit level per 32-value scale, a 3-bit mantissa, a 4-bit level).
 */
test('stories260K with quantized KV caches: q8_0 close to f32, fp8 next, q4_0 far behind', {
  skip: stories.skip,
}, () => {
  const model = loadModel(stories.path, new CpuBackend({ threads: 1 }));
  const own = ownStories(model, 1, 4, 256);
  const q8 = kvCacheAgreement(model, own, 'q8_0');
  const fp8 = kvCacheAgreement(model, own, 'fp8');
  const q4 = kvCacheAgreement(model, own, 'q4_0');
  const say = (a: typeof q8) => `top-1 ${(100 * a.top1).toFixed(1)}%, rel L2 ${a.relL2.toFixed(4)}`;
  assert.ok(q8.top1 >= 0.96 && q8.relL2 < 0.03, `q8_0: ${say(q8)}`);
  assert.ok(fp8.top1 >= 0.9 && fp8.relL2 < 0.07, `fp8: ${say(fp8)}`);
  assert.ok(q4.top1 >= 0.4 && q4.relL2 < 0.35, `q4_0: ${say(q4)}`);
  assert.ok(q8.relL2 < fp8.relL2 && fp8.relL2 < q4.relL2, 'error grows as precision falls');
});
