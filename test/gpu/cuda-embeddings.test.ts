import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Backend, DType } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { PoolingEngine } from '../../src/engine/pooling-engine.ts';
import { loadPoolingEngine } from '../../src/engine/pooling-load.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { PoolingRunner, type StepPooler } from '../../src/runner/pooling-runner.ts';
import { fakeTokenizer } from '../helpers/fake-model.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';
import { LowPrecisionCpu } from '../helpers/low-precision-cpu.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

const skip = gpuSkip();

interface Golden {
  input_ids: number[][];
  embeddings: number[][];
}

function embedAll(dir: string, backend: Backend, ids: number[][]): Float32Array[] {
  const { model } = loadPoolingModel(dir, backend);
  const out = backend.toHost(
    model.forward(backend.beginStep(buildPoolingBatch(ids.map((tokenIds) => ({ tokenIds }))))),
  );
  return ids.map((_, i) => out.subarray(i * model.outputSize, (i + 1) * model.outputSize));
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

for (const name of ['tiny-bert', 'tiny-qwen3-embed']) {
  const fixture = modelFixture(name);
  describe(`CUDA embeddings: ${name}`, () => {
    const why = skip || fixture.skip;
    const golden = (): Golden => JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8'));

    test('float32: every embedding within 1e-4 of sentence-transformers', { skip: why }, () => {
      const g = golden();
      embedAll(fixture.path, new CudaBackend({ dtype: 'f32', graphs: false }), g.input_ids).forEach((e, i) => {
        const diff = maxAbsDiff(e, g.embeddings[i]!);
        assert.ok(diff < 1e-4, `sentence ${i}: ${diff}`);
      });
    });

    // Target: cosine >= 0.9999. On these random-weight nets a faithful bf16 forward (the CPU emulation of the
    // device's roundings) lands near 0.9997 for tiny-qwen3-embed, so the bound is 0.9999 or 1.5x the emulation's
    // distance from 1, whichever is looser; fp16 must reach 0.9999.
    for (const dtype of ['bf16', 'f16'] as const) {
      test(`${dtype}: cosine with sentence-transformers >= 0.9999 (or 1.5x a CPU emulation's distance)`, {
        skip: why,
      }, () => {
        const g = golden();
        const got = embedAll(fixture.path, new CudaBackend({ dtype: dtype as DType, graphs: false }), g.input_ids);
        const emulated = embedAll(fixture.path, new LowPrecisionCpu(dtype), g.input_ids);
        g.embeddings.forEach((want, i) => {
          const cos = cosine(got[i]!, want);
          const emu = cosine(emulated[i]!, want);
          const bound = dtype === 'f16' ? 0.9999 : Math.min(0.9999, 1 - 1.5 * (1 - emu));
          console.log(`${name} ${dtype} sentence ${i}: cosine ${cos.toFixed(6)} (CPU emulation ${emu.toFixed(6)})`);
          assert.ok(cos >= bound, `sentence ${i}: cosine ${cos} < ${bound} (emulation ${emu})`);
        });
      });
    }

    test('float32 through the pooling engine (the device awaited off the event loop): concurrent requests give the goldens', {
      skip: why,
    }, async () => {
      const g = golden();
      const { model } = loadPoolingModel(fixture.path, new CudaBackend({ dtype: 'f32', graphs: false }));
      const runner = new PoolingRunner(model);
      assert.equal(runner.computesApart, true);
      const engine = new PoolingEngine({
        runner,
        tokenizer: fakeTokenizer,
        maxModelLen: 512,
        maxNumBatchedTokens: 512,
        maxNumSeqs: 64,
      });
      // Half the inputs now, half while the first step computes: both halves come back right.
      const first = g.input_ids.slice(0, 2).map((ids) => engine.pool([{ tokenIds: ids }]));
      await new Promise((r) => setImmediate(r));
      const rest = g.input_ids.slice(2).map((ids) => engine.pool([{ tokenIds: ids }]));
      const rows = await Promise.all([...first, ...rest]);
      rows.forEach(([row], i) => {
        const diff = maxAbsDiff(row!, g.embeddings[i]!);
        assert.ok(diff < 1e-4, `sentence ${i}: ${diff}`);
      });
      await engine.shutdown();
    });

    for (const dtype of ['f32', 'bf16'] as const) {
      test(`${dtype}: steps overlapping (two in flight through the engine) give the rows of the same batches run one at a time, bit for bit`, {
        skip: why,
      }, async () => {
        const backend = new CudaBackend({ dtype, graphs: false });
        const { model } = loadPoolingModel(fixture.path, backend);
        const runner = new PoolingRunner(model);
        const vocab = model.config.vocabSize;
        // Steps of three inputs of 3..60 tokens: every step a different shape, so its arena and metadata differ.
        const inputs = Array.from({ length: 24 }, (_, i) => ({
          tokenIds: Array.from({ length: 3 + ((i * 37) % 58) }, (_, j) => (i * 7919 + j * 104729 + 5) % vocab),
        }));
        const groups = Array.from({ length: 8 }, (_, g) => inputs.slice(3 * g, 3 * g + 3));
        // One at a time: each step's rows read before the next is launched.
        const alone: Float32Array[] = [];
        for (const group of groups) alone.push(await runner.run(group));
        backend.ctx.arena.poison();
        let pending = 0;
        let most = 0;
        const counting: StepPooler = {
          task: runner.task,
          outputSize: runner.outputSize,
          normalized: runner.normalized,
          vocabSize: runner.vocabSize,
          computesApart: runner.computesApart,
          run: (batch) => {
            most = Math.max(most, ++pending);
            return runner.run(batch).finally(() => pending--);
          },
        };
        const engine = new PoolingEngine({
          runner: counting,
          tokenizer: fakeTokenizer,
          maxModelLen: 512,
          maxNumBatchedTokens: 512,
          maxNumSeqs: 3,
        });
        const rows = await Promise.all(inputs.map((input) => engine.pool([input])));
        await engine.shutdown();
        assert.equal(most, 2, 'two steps in flight');
        const w = runner.outputSize;
        rows.forEach(([row], i) => {
          const want = alone[Math.floor(i / 3)]!.subarray((i % 3) * w, ((i % 3) + 1) * w);
          assert.deepEqual(
            new Uint32Array(row!.buffer, row!.byteOffset, w),
            new Uint32Array(want.slice().buffer),
            `input ${i}`,
          );
        });
      });
    }

    for (const dtype of ['float32', 'bfloat16'] as const) {
      test(`${dtype}: the runner thread on and off give the same rows, bit for bit; its start-up lines reach the log`, {
        skip: why,
      }, async () => {
        const g = golden();
        const rows: Float32Array[][] = [];
        for (const runnerThread of [true, false]) {
          const lines: string[] = [];
          const loaded = await loadPoolingEngine(fixture.path, {
            device: 'cuda',
            dtype,
            runnerThread,
            maxNumSeqs: 3,
            log: (line) => lines.push(line),
          });
          try {
            assert.equal(loaded.backend, 'cuda');
            assert.notEqual(loaded.deviceName, 'CPU');
            assert.ok(
              lines.some((l) => l.startsWith('start-up: ')),
              lines.join('\n'),
            );
            const vocab = loaded.config.vocabSize;
            // The goldens, then inputs of 3..60 tokens: steps of three, two in flight, every one a different shape.
            const inputs = [
              ...g.input_ids,
              ...Array.from({ length: 24 }, (_, i) =>
                Array.from({ length: 3 + ((i * 37) % 58) }, (_, j) => (i * 7919 + j * 104729 + 5) % vocab),
              ),
            ];
            const got = await Promise.all(inputs.map((tokenIds) => loaded.engine.pool([{ tokenIds }])));
            rows.push(got.map(([row]) => row!));
          } finally {
            await loaded.engine.shutdown();
          }
        }
        const [threaded, here] = rows as [Float32Array[], Float32Array[]];
        if (dtype === 'float32') {
          for (const [i, want] of g.embeddings.entries())
            assert.ok(maxAbsDiff(threaded[i]!, want) < 1e-4, `sentence ${i}`);
        }
        const bits = (r: Float32Array) => [...new Uint32Array(r.slice().buffer)];
        assert.deepEqual(threaded.map(bits), here.map(bits));
      });
    }
  });
}
