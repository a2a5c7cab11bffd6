import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { GgufFile } from '../../src/loader/gguf/read.ts';
import { loadModel } from '../../src/models/load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, logSoftmax, teacherForcedSteps } from '../helpers/llama-cpp.ts';
import { argmax } from '../helpers/paged-session.ts';
import { type TinyMoe, writeTinyMoeFolder } from '../helpers/random-folders.ts';

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

async function agreement(name: string, dir: string, type: string, maxRelative = MAX_RELATIVE): Promise<Agreement> {
  const path = join(out, `${name}-${type}.gguf`);
  quantizeToGguf(dir, path, parseQuantization(type, 'type'));
  // Every stacked expert matrix is quantized (the MoE folders' widths fit 32-value blocks), the routers never.
  const file = GgufFile.open(path);
  for (const t of file.tensors.values()) {
    if (/_exps\.weight$/.test(t.name)) assert.ok(t.type.blockSize > 1, `${t.name}: ${t.type.name}`);
    if (/ffn_gate_inp/.test(t.name)) assert.equal(t.type.blockSize, 1, `${t.name}: ${t.type.name}`);
  }
  file.close();
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
      else if (first! - second! > 2 * maxRelative * (hi - lo)) decisiveMisses.push(`step ${steps - 1}`);
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

/**
 * Mixture-of-experts files from `pagoda quantize`, experts stacked in blocks (`ffn_*_exps`: kept so in pagoda's CPU
 * memory, each chosen expert's rows read from them). The two sides route in different float arithmetic (pagoda's
 * softmax and renormalisation in float64, ggml's in float32 with SIMD sums), so each MoE layer's output differs from
 * llama.cpp's by ~1e-7; where that moves an 8-bit activation of the next layer across a rounding boundary the step
 * and the rest of its sequence differ as the dense fixtures' rare steps do, but here in most sequences (the F32
 * files agree to 1e-3: test/models/gguf-llama-cpp.test.ts). Measured (top-1 identical / largest difference as a
 * fraction of the range): Mixtral Q8_0 97.3/0.071, Q4_0 100/0.0000, Q4_K_M 100/0.019; Qwen3-MoE 100/0.0000,
 * 100/0.0000, 100/0.0072; Qwen2-MoE 97.3/0.010, 100/0.0065, 100/0.043; GraniteMoeShared 100/0.009, 100/0.0036,
 * 100/0.0014. MAX_RELATIVE_MOE = 0.1, 1.4x the largest, still tells an expert's rows read from another expert (which
 * moves the logits by their range).
 */
const MAX_RELATIVE_MOE = 0.1;

describe('MoE families: pagoda quantize, experts in blocks, then pagoda and llama.cpp on the same file', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const families: TinyMoe[] = ['mixtral', 'qwen3moe', 'qwen2moe', 'granitemoeshared'];
  for (const family of families) {
    for (const type of ['q8_0', 'q4_0', 'q4_k_m']) {
      test(`${family} ${type.toUpperCase()}: logits within ${MAX_RELATIVE_MOE} of their range, top-1 agreeing on ${MIN_TOP1 * 100}% of steps`, async () => {
        const dir = writeTinyMoeFolder(join(out, `tiny-${family}`), family, modelFixture('tiny-llama').path);
        const { top1, relative, decisiveMisses } = await agreement(`tiny-${family}`, dir, type, MAX_RELATIVE_MOE);
        assert.ok(relative < MAX_RELATIVE_MOE, `${type}: logits differ by ${relative.toFixed(4)} of their range`);
        assert.deepEqual(decisiveMisses, [], `${type}: top-1 differs where llama.cpp's top two are far apart`);
        assert.ok(top1 >= MIN_TOP1, `${type}: top-1 identical on ${(top1 * 100).toFixed(1)}% of steps`);
      });
    }
  }
});
