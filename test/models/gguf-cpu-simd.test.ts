import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { loadModel } from '../../src/models/load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { teacherForced } from '../helpers/paged-session.ts';
import { RecordingCpu } from '../helpers/recording-cpu.ts';

const fixture = modelFixture('tiny-llama-256');
const out = mkdtempSync(join(tmpdir(), 'pagoda-cpu-simd-'));
after(() => rmSync(out, { recursive: true, force: true }));

for (const type of ['q4_k_m', 'q5_k_m', 'q2_k', 'q8_0', 'q4_0']) {
  test(`tiny-llama-256 ${type.toUpperCase()}: decode logits with the SIMD kernels, on 1 and 2 threads, are the JavaScript kernels' exactly`, {
    skip: fixture.skip,
  }, () => {
    const path = join(out, `${type}.gguf`);
    quantizeToGguf(fixture.path, path, parseQuantization(type, 'type'));
    const p = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts[0];
    // Every token its own step: one token takes the dot products on both sides (more take the f32 kernel in JavaScript).
    const [first, ...rest] = p.input_ids;
    const run = (backend: CpuBackend) => teacherForced(loadModel(path, backend), [first], [...rest, ...p.greedy_ids]);
    const want = run(new CpuBackend({ threads: 1, simd: false }));
    for (const threads of [1, 2]) {
      const backend = new RecordingCpu({ threads });
      assert.deepEqual(run(backend), want, `${threads} thread(s)`);
      assert.ok(backend.quantized.length > 0);
      for (const w of backend.quantized)
        assert.ok(
          w.parts.every((part) => part.home),
          'blocks in WebAssembly memory',
        );
    }
  });
}
