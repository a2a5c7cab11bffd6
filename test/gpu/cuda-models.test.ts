import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DType } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { cudaDtype } from '../../src/backend/cuda/device.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { GOLDEN_CASES, goldenFixture } from '../helpers/golden-cases.ts';
import { gpuSkip, relL2 } from '../helpers/gpu.ts';
import { LowPrecisionCpu } from '../helpers/low-precision-cpu.ts';
import { argmax, maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';
import { loadAsGolden } from '../helpers/patched-model.ts';

const skip = gpuSkip();
interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
  greedy_ids: number[];
}

for (const { name, file, maxModelLen } of GOLDEN_CASES) {
  const fixture = goldenFixture(name);
  describe(`CUDA end to end: ${name}${file === 'golden.json' ? '' : ` ${file}`}`, () => {
    const why = skip || fixture.skip;
    const dir = fixture.path;
    const golden = () => JSON.parse(readFileSync(join(dir, file), 'utf8')).prompts as GoldenPrompt[];
    const load = (dtype: DType, graphs: boolean) =>
      loadAsGolden(dir, new CudaBackend({ dtype, graphs }), { maxModelLen });

    test('--dtype float32: last logits within 1e-3 and greedy ids identical, eager and through decode graphs', {
      skip: why,
    }, () => {
      for (const graphs of [false, true]) {
        const model = load('f32', graphs);
        for (const p of golden()) {
          const session = new PagedSession(model, 16);
          let logits = session.step([{ seq: 0, tokens: p.input_ids }])[0]!;
          const diff = maxAbsDiff(logits, p.last_logits);
          assert.ok(diff < 1e-3, `last logits differ by ${diff}`);
          const ids: number[] = [];
          for (let i = 0; i < p.greedy_ids.length; i++) {
            if (i > 0) logits = session.step([{ seq: 0, tokens: [ids.at(-1)!] }])[0]!;
            ids.push(argmax(logits));
          }
          assert.deepEqual(ids, p.greedy_ids, `greedy ids (graphs ${graphs})`);
        }
      }
    });

    test('all prompts decoded together as one batch through decode graphs (padded bucket)', { skip: why }, () => {
      const model = load('f32', true);
      const prompts = golden();
      const session = new PagedSession(model, 16);
      let rows = session.step(prompts.map((p, seq) => ({ seq, tokens: p.input_ids })));
      const ids: number[][] = prompts.map(() => []);
      const steps = Math.min(...prompts.map((p) => p.greedy_ids.length));
      for (let i = 0; i < steps; i++) {
        if (i > 0) rows = session.step(prompts.map((_, seq) => ({ seq, tokens: [ids[seq]!.at(-1)!] })));
        for (const [seq, r] of rows.entries()) ids[seq]!.push(argmax(r));
      }
      for (const [seq, p] of prompts.entries())
        assert.deepEqual(ids[seq], p.greedy_ids.slice(0, steps), `prompt ${seq}`);
    });

    // The golden logits are float32. On the tiny random-weight fixtures a faithful bf16 forward is itself more than
    // 2 % away: each rounding is amplified 2-8x by these random nets (rounding tiny-llama's weights alone moves its
    // logits by 2.7 %, tiny-qwen2's bf16 activations alone by 3 %; the trained stories260K lands at 0.7 %; see
    // bench/bf16-error.ts and its table in bench/RESULTS.md). So the bound is 2e-2 or 1.25x the error of the same
    // arithmetic emulated on the CPU (test/helpers/low-precision-cpu.ts), whichever is larger.
    test('stored dtype (bf16 / fp16): last logits within 2e-2 relative L2 (or of a CPU emulation of that precision)', {
      skip: why,
    }, () => {
      const dtype = cudaDtype(loadModelConfig(dir).dtype);
      const model = load(dtype, false);
      const emulated = loadAsGolden(dir, new LowPrecisionCpu(dtype === 'f16' ? 'f16' : 'bf16'), { maxModelLen });
      for (const p of golden()) {
        const logits = new PagedSession(model, 16).step([{ seq: 0, tokens: p.input_ids }])[0]!;
        const e = relL2(logits, p.last_logits);
        const emu = relL2(new PagedSession(emulated, 16).step([{ seq: 0, tokens: p.input_ids }])[0]!, p.last_logits);
        const bound = Math.max(2e-2, 1.25 * emu);
        assert.ok(
          e <= bound,
          `${dtype}: relative L2 ${e.toFixed(4)} > ${bound.toFixed(4)} (CPU emulation ${emu.toFixed(4)})`,
        );
        console.log(`${name} ${dtype}: relative L2 ${e.toFixed(4)} (CPU ${dtype} emulation ${emu.toFixed(4)})`);
      }
    });
  });
}
