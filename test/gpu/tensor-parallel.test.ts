import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { Nccl } from '../../src/backend/cuda/nccl.ts';
import { NcclCommunicator, sideBySide } from '../../src/backend/cuda/nccl-communicator.ts';
import type { CudaTensor } from '../../src/backend/cuda/tensor.ts';
import { ParallelBackend } from '../../src/backend/parallel/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip, hostTensor, randomValues } from '../helpers/gpu.ts';
import { maxAbsDiff, PagedSession, twoSequenceGreedy } from '../helpers/paged-session.ts';

const gpu = gpuSkip();
const devices = gpu ? 0 : CudaDriver.open().info.deviceCount;
/** false when NCCL loads, else why the NCCL tests skip. */
function ncclSkip(): false | string {
  if (gpu) return gpu;
  try {
    Nccl.open([]);
    return false;
  } catch (e) {
    if (e instanceof CudaUnavailable) return `NCCL not found: ${e.reason}`;
    throw e;
  }
}
const nccl = ncclSkip();
const tinyLlama = modelFixture('tiny-llama');

/** Elements whose float32 bits differ (NaN-safe). */
function bitsDiffer(a: Float32Array, b: Float32Array): number {
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  let n = Math.abs(x.length - y.length);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) n++;
  return n;
}

test('--device cuda refuses more ranks than devices, and otherwise several GPUs over NCCL (not built yet), in one line', {
  skip: gpu || tinyLlama.skip,
}, () => {
  for (const ranks of [2, devices + 1]) {
    const expected =
      ranks > devices
        ? `--tensor-parallel-size ${ranks}: the CUDA driver sees ${devices} device(s), fewer than ${ranks}`
        : `--tensor-parallel-size ${ranks}: NCCL over several GPUs is not built yet, one process drives one device (PAGODA_TP_FORCE_NCCL=1 runs one rank through NCCL; --device cpu simulates the ranks)`;
    assert.throws(
      () => prepareModel(tinyLlama.path, { device: 'cuda', tensorParallelSize: ranks, log: () => {} }),
      (err: Error) => err.message === expected,
    );
  }
});

test('blocks [N, T, c] laid side by side as [T, N·c] by 2-D copies, every byte of the result written', {
  skip: gpu,
}, () => {
  const b = new CudaBackend({ dtype: 'f32' });
  const [n, rows, cols] = [3, 5, 7];
  const values = randomValues(n * rows * cols, 41);
  const blocks = b.loadWeight(hostTensor('blocks', [n * rows * cols], values)) as CudaTensor;
  b.ctx.arena.reset();
  b.ctx.drv.fill32(b.ctx.empty([4096]).ptr, 0x7fc00000, 4096); // the arena's next bytes poisoned with NaN
  b.ctx.arena.reset();
  const out = b.toHost(sideBySide(b.ctx, blocks, n, [rows, n * cols]));
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < cols; c++) {
        assert.equal(
          out[t * n * cols + j * cols + c],
          values[(j * rows + t) * cols + c],
          `row ${t}, block ${j}, col ${c}`,
        );
      }
    }
  }
  b.release();
});

const FIXTURES = ['tiny-llama', 'tiny-mistral', 'tiny-qwen2', 'tiny-qwen3', 'tiny-phi3-longrope'];

for (const name of FIXTURES) {
  const fixture = modelFixture(name);
  for (const dtype of ['f32', 'bf16'] as DType[]) {
    test(`${name} ${dtype}: one rank through NCCL gives bit-identical logits to the plain path, decode graphs replayed`, {
      skip: nccl || fixture.skip,
    }, () => {
      const plain = new CudaBackend({ dtype });
      const whole = twoSequenceGreedy(new PagedSession(loadModel(fixture.path, plain)), 6);
      const rank = new CudaBackend({ dtype });
      const parallel = new ParallelBackend([rank], new NcclCommunicator([rank], Nccl.open([])));
      const split = twoSequenceGreedy(new PagedSession(loadModel(fixture.path, parallel)), 6);
      assert.equal(split.logits.length, whole.logits.length);
      whole.logits.forEach((l, i) => {
        const differ = bitsDiffer(l, split.logits[i]!);
        assert.equal(differ, 0, `row ${i}: ${differ} logits differ, max |Δ| ${maxAbsDiff(l, split.logits[i]!)}`);
      });
      assert.deepEqual(split.ids, whole.ids);
      // The decode steps replayed graphs with the collectives captured in them, as the plain path's did.
      assert.ok(rank.graphs!.stats.captures > 0 && rank.graphs!.stats.replays > 0, JSON.stringify(rank.graphs!.stats));
      assert.deepEqual(rank.graphs!.stats.replays, plain.graphs!.stats.replays);
      parallel.release();
      plain.release();
    });
  }
}

test('PAGODA_TP_FORCE_NCCL=1: the engine loads one rank through NCCL, samples on it, and the same greedy ids come', {
  skip: nccl || tinyLlama.skip,
}, () => {
  const greedy = (tpForceNccl: boolean) => {
    const lines: string[] = [];
    const opts = {
      device: 'cuda',
      dtype: 'float32',
      kvCacheMemory: 8 << 20,
      maxNumSeqs: 4,
      log: (l: string) => lines.push(l),
    };
    const m = prepareModel(tinyLlama.path, { ...opts, cuda: { tpForceNccl } });
    const backend = m.runner.model.backend;
    assert.equal(backend instanceof ParallelBackend, tpForceNccl, backend.constructor.name);
    assert.equal(
      lines.some((l) => /^tensor parallel: 1 rank\(s\) on the GPU, collectives through NCCL \d+\.\d+\.\d+$/.test(l)),
      tpForceNccl,
    );
    const ids: number[] = [];
    let tokens = [1, 17, 230, 5, 99];
    for (let i = 0; i < 8; i++) {
      const step = m.runner.execute(
        [{ tokenIds: tokens, startPos: ids.length ? 4 + ids.length : 0, blockTable: [0, 1], logits: 'last' }],
        [],
      );
      const row = { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0, step: i };
      const penalties = { repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0 };
      ids.push(step.sample!([{ ...row, ...penalties }])[0]!);
      tokens = [ids.at(-1)!];
    }
    backend.release();
    return ids;
  };
  assert.deepEqual(greedy(true), greedy(false));
});

for (const ranks of [2, 4]) {
  test(`${ranks} ranks over NCCL: every fixture's logits within 1e-3 of one rank (float32), greedy ids equal`, {
    skip: nccl || (devices < ranks && `${devices} GPU(s), fewer than ${ranks}`),
    todo: devices >= ranks && 'one process drives one device: NCCL over several GPUs is not built yet',
  }, () => {
    for (const name of FIXTURES) {
      const fixture = modelFixture(name);
      if (fixture.skip) continue;
      const load = (tensorParallelSize: number) =>
        prepareModel(fixture.path, { device: 'cuda', dtype: 'float32', tensorParallelSize, log: () => {} }).runner
          .model;
      const whole = twoSequenceGreedy(new PagedSession(load(1)), 4);
      const split = twoSequenceGreedy(new PagedSession(load(ranks)), 4);
      const diff = Math.max(...whole.logits.map((l, i) => maxAbsDiff(l, split.logits[i]!)));
      assert.ok(diff <= 1e-3, `${name}: max |Δlogit| ${diff}`);
      assert.deepEqual(split.ids, whole.ids, name);
    }
  });
}
