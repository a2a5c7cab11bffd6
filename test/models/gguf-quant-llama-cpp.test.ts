import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { loadModel } from '../../src/models/load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, logSoftmax, teacherForcedSteps } from '../helpers/llama-cpp.ts';
import { argmax } from '../helpers/paged-session.ts';

/**
 * `pagoda quantize`'s files run in pagoda and in llama.cpp (node-llama-cpp's CPU build), teacher-forced over each
 * golden prompt and its continuation. Both sides hold the same blocks and both quantize each activation row to the
 * weight type's 8-bit type and take integer dot products per block (quant-act.ts, quant-dot.ts), so what is left is
 * float rounding in another order (SIMD sums, exp, norms): now and then it moves an activation across a rounding
 * boundary, one 8-bit level, and on these random-weight fixtures one level moves a step's log-probabilities by up to
 * 0.17 (about 1.5% of their range of about 10), while most steps agree to 1e-4.
 *
 * Measured (top-1 identical / largest log-probability difference as a fraction of the range), tiny-llama-256 and
 * tiny-qwen2-256, 75 steps each:
 *   F16 100/0.0013 and 100/0.0016 (test/models/gguf-llama-cpp.test.ts), Q8_0 100/0.015 and 100/0.008,
 *   Q4_0 100/0.009 and 98.7/0.008, Q4_K_M 100/0.015 and 100/0.012, Q5_K_M 100/0.008 and 100/0.0000,
 *   Q6_K 98.7/0.015 and 100/0.013, Q2_K 100/0.013 and 100/0.012.
 * The two misses are near-ties: llama.cpp's top two 0.012 apart (Q6_K) and exactly tied (Q4_0). With float
 * activations (before) the differences were 0.034–0.077 of the range and top-1 agreed on 88–96% of steps, so
 * MAX_RELATIVE = 0.025, 1.6x the largest measured, tells 8-bit activations taken as ggml takes them from float ones
 * (and from a wrong block layout or scale, which moves logits by their whole range). Every step whose llama.cpp
 * top-two gap exceeds twice that tolerance (each of the two may move by it) must agree. Overall the issue's 98% (100%
 * for Q8_0) holds on the machine measured; the floor asserted is 96% (three near-ties in 75 steps) because another
 * CPU's llama.cpp build takes other SIMD paths, whose rounding may flip a different near-tie.
 */
const MAX_RELATIVE = 0.025;
const MIN_TOP1 = 0.96;
const TYPES = ['q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'q6_k', 'q2_k'];
const out = mkdtempSync(join(tmpdir(), 'pagoda-quant-llama-cpp-'));
const llama = cpuLlamaForTests();

interface Agreement {
  top1: number;
  relative: number;
  /** Steps whose top-1 differs although llama.cpp's top two are further apart than the tolerance allows. */
  decisiveMisses: string[];
}

async function agreement(name: string, dir: string, type: string): Promise<Agreement> {
  const path = join(out, `${name}-${type}.gguf`);
  quantizeToGguf(dir, path, parseQuantization(type, 'type'));
  const ours = loadModel(path, new CpuBackend());
  const theirs = await llama().loadModel({ modelPath: path });
  let [steps, same, relative] = [0, 0, 0];
  const decisiveMisses: string[] = [];
  try {
    for await (const { row, want } of teacherForcedSteps(ours, theirs, dir)) {
      steps++;
      // Both sides as log-probabilities: their range is the logits' range.
      const ours = logSoftmax(row);
      let [lo, hi, diff] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0];
      for (let i = 0; i < want.length; i++) {
        lo = Math.min(lo, want[i]!);
        hi = Math.max(hi, want[i]!);
        diff = Math.max(diff, Math.abs(ours[i]! - want[i]!));
      }
      relative = Math.max(relative, diff / (hi - lo));
      const [first, second] = [...want].sort((a, b) => b - a);
      if (argmax(row) === argmax(Float32Array.from(want))) same++;
      else if (first! - second! > 2 * MAX_RELATIVE * (hi - lo)) decisiveMisses.push(`step ${steps - 1}`);
    }
  } finally {
    await theirs.dispose();
  }
  assert.ok(steps >= 50, `${name}: only ${steps} steps compared`);
  return { top1: same / steps, relative, decisiveMisses };
}

for (const name of ['tiny-llama-256', 'tiny-qwen2-256']) {
  const fixture = modelFixture(name);
  describe(`${name}: pagoda quantize, then pagoda and llama.cpp on the same file`, { skip: fixture.skip }, () => {
    for (const type of TYPES) {
      test(`${type.toUpperCase()}: logits within ${MAX_RELATIVE} of their range, top-1 agreeing on ${MIN_TOP1 * 100}% of steps and wherever it is no near-tie`, async () => {
        const { top1, relative, decisiveMisses } = await agreement(name, fixture.path, type);
        assert.ok(relative < MAX_RELATIVE, `${type}: logits differ by ${relative.toFixed(4)} of their range`);
        assert.deepEqual(decisiveMisses, [], `${type}: top-1 differs where llama.cpp's top two are far apart`);
        assert.ok(top1 >= MIN_TOP1, `${type}: top-1 identical on ${(top1 * 100).toFixed(1)}% of steps`);
      });
    }
  });
}
