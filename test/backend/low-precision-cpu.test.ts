import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { bf16Bits } from '../../src/primitives/float-bits.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { relL2 } from '../helpers/gpu.ts';
import { LowPrecisionCpu, ROUNDING_POINTS, type RoundingPoint } from '../helpers/low-precision-cpu.ts';
import { PagedSession } from '../helpers/paged-session.ts';

/** The last logits of the fixture's first golden prompt through `backend`. */
function lastLogits(name: string, backend: CpuBackend): Float32Array {
  const dir = modelFixture(name).path;
  const prompt = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts[0].input_ids as number[];
  return new PagedSession(loadModel(dir, backend), 16).step([{ seq: 0, tokens: prompt }])[0]!.slice();
}

const bf16 = (x: number) => new Float32Array(new Uint32Array([bf16Bits(x) << 16]).buffer)[0]!;
const ulp = (x: number) => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 7);

describe('LowPrecisionCpu rounding points', () => {
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'tiny-gemma2', 'tiny-gemma3']) {
    test(`${name}: the forward passes every rounding point, each op named from its weight`, {
      skip: modelFixture(name).skip,
    }, () => {
      const backend = new LowPrecisionCpu('bf16');
      lastLogits(name, backend);
      const absent: RoundingPoint[] = [];
      // A lookup from the rounded table is exact; Gemma's embeddings are scaled after it.
      if (!name.includes('gemma')) absent.push('embedding');
      if (name !== 'tiny-qwen3' && name !== 'tiny-gemma3') absent.push('qk_norm');
      if (name !== 'tiny-qwen2') absent.push('pre_bias');
      // Gemma 2/3's last sandwich norm, add and final norm are one addRmsNorm: its residual is never rounded.
      if (name.includes('gemma')) absent.push('add');
      assert.deepEqual([...backend.seen].sort(), ROUNDING_POINTS.filter((p) => !absent.includes(p)).sort());
    });
  }

  test('nothing rounded is the float32 CPU backend; logits alone rounded are its logits to nearest bf16', {
    skip: modelFixture('tiny-qwen2').skip,
  }, () => {
    const exact = lastLogits('tiny-qwen2', new CpuBackend({ threads: 1 }));
    assert.ok(relL2(lastLogits('tiny-qwen2', new LowPrecisionCpu('bf16', [])), exact) < 1e-6);
    const rounded = lastLogits('tiny-qwen2', new LowPrecisionCpu('bf16', ['logits']));
    assert.deepEqual(rounded, exact.map(bf16));
  });

  test('dithered: within half a unit in the last place of the exact value, not round-to-nearest', {
    skip: modelFixture('tiny-qwen2').skip,
  }, () => {
    const exact = lastLogits('tiny-qwen2', new CpuBackend({ threads: 1 }));
    const dithered = lastLogits('tiny-qwen2', new LowPrecisionCpu('bf16', ['logits', 'weights'], { dither: 7 }));
    let differs = 0;
    for (const [i, x] of exact.entries()) {
      assert.ok(Math.abs(dithered[i]! - x) <= ulp(x) / 2, `logit ${i}: ${dithered[i]} vs ${x}`);
      if (dithered[i] !== bf16(x)) differs++;
    }
    // tiny-qwen2 stores bf16 weights: dithering leaves representable values alone, so only the logits moved.
    assert.ok(differs > exact.length / 4, `only ${differs} of ${exact.length} logits differ from nearest`);
  });
});
