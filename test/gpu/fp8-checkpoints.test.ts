import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { FP8_FORCED, FP8_PROMPT, FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';
import { gpuSkip, relL2 } from '../helpers/gpu.ts';
import { teacherForced } from '../helpers/paged-session.ts';

const skip = gpuSkip();

for (const { variant, summary } of FP8_VARIANTS) {
  const dir = fixture(`tiny-llama-fp8-${variant}`);
  describe(`CUDA: FP8 checkpoint ${variant}`, () => {
    test('bf16 and f16: logits exactly those of the numpy-dequantized weights, within 5e-2 of float32 on the CPU', {
      skip,
    }, () => {
      const cpu = teacherForced(
        loadModel(`${dir}-dequantized`, new CpuBackend({ threads: 1 })),
        FP8_PROMPT,
        FP8_FORCED,
      );
      for (const dtype of ['bf16', 'f16'] as const) {
        const run = (path: string) =>
          teacherForced(loadModel(path, new CudaBackend({ dtype, graphs: false })), FP8_PROMPT, FP8_FORCED);
        const fp8 = run(dir);
        const reference = run(`${dir}-dequantized`);
        for (let i = 0; i < fp8.length; i++) {
          assert.deepEqual(fp8[i], reference[i], `${dtype} step ${i}: same weights on the device, same logits`);
          const e = relL2(fp8[i]!, cpu[i]!);
          assert.ok(e < 5e-2, `${dtype} step ${i}: relative L2 ${e} against float32 on the CPU`);
        }
      }
    });

    test('the engine sizes the weights for their dequantized dtype and says so at start-up', { skip }, () => {
      const lines: string[] = [];
      const p = prepareModel(dir, {
        device: 'cuda',
        dtype: 'bfloat16',
        kvCacheMemory: 2 ** 24,
        log: (l) => lines.push(l),
      });
      assert.ok(lines.includes(`weights: ${summary} dequantized to bfloat16 at load`), lines.join('\n'));
      const [logits] = teacherForced(p.runner.model, FP8_PROMPT, []);
      assert.ok(logits!.every(Number.isFinite));
    });
  });
}

test('--quantization fp8 on the GPU is refused in one line naming compute capability 8.9', { skip }, () => {
  assert.throws(
    () => prepareModel(fixture('tiny-llama'), { device: 'cuda', quantization: 'fp8', log: () => {} }),
    /^UserError: --quantization fp8: the CUDA backend's FP8 GEMM path is not built yet \(it needs a GPU of compute capability 8\.9 or newer\)/,
  );
});
