import assert from 'node:assert/strict';
import { test } from 'node:test';
import { progressLine } from '../../src/runner/cuda-setup.ts';
import { type CudaStartupTimes, cudaStartupParts } from '../../src/runner/startup-report.ts';

const base: CudaStartupTimes = {
  weights: { upload: { bytes: 16.06e9, tensors: 291, readMs: 2500, waitMs: 180 }, ms: 2920 },
  prefetch: {
    submitted: 27,
    cached: 6,
    compiled: 21,
    failed: 0,
    compileMs: 6300,
    wallMs: 3400,
    waitMs: 120,
    workers: 8,
  },
  hiddenMs: 2900,
  firstUse: { compiled: 1, cached: 0, compileMs: 800 },
  kvMs: 420,
  graphs: true,
};

test('the CUDA start-up parts: weights GB and GB/s, kernels compiled and hidden, KV sizing, graphs', () => {
  assert.equal(
    cudaStartupParts(base),
    'weights 16.06 GB in 2.9 s (5.5 GB/s; 2.5 s reading, 0.2 s waiting on copies); ' +
      'kernels: 27 prefetched, 21 compiled on 8 threads (6.3 s of compiling, 2.9 s of 3.4 s behind loading, 0.1 s waited for), 6 cached, ' +
      '1 compiled on first use (0.8 s); KV sizing (profiling pass) 0.4 s; CUDA graphs captured per batch size on first decode',
  );
});

test('a warm cache, no profiling pass, graphs off, and a failure say so', () => {
  const warm = cudaStartupParts({
    ...base,
    prefetch: { ...base.prefetch!, cached: 27, compiled: 0, compileMs: 0, wallMs: 0, waitMs: 0, workers: 0 },
    hiddenMs: 0,
    firstUse: { compiled: 0, cached: 2, compileMs: 0 },
    kvMs: null,
    graphs: false,
  });
  assert.match(
    warm,
    /; kernels: 27 prefetched, 27 cached, none compiled on first use so far, 2 read from the cache on first use; CUDA graphs off$/,
  );
  const failed = cudaStartupParts({ ...base, prefetch: { ...base.prefetch!, compiled: 19, failed: 1 } });
  assert.match(failed, /20 compiled on 8 threads .*, 6 cached, 1 still compiling, 1 failed \(reported where used\)/);
  assert.match(cudaStartupParts({ ...base, prefetch: null }), /kernels: none prefetched, 1 compiled on first use/);
});

test('loading progress: bytes and GB/s, at most four times a second, nothing without a terminal', () => {
  let now = 1000;
  const lines: string[] = [];
  const progress = progressLine(
    16.06e9,
    (l) => lines.push(l),
    () => now,
  )!;
  now += 100;
  progress(0.5e9);
  now += 400;
  progress(2.5e9);
  now += 100;
  progress(3e9);
  now += 500;
  progress(5.5e9);
  assert.deepEqual(lines, ['weights 2.50 / 16.06 GB, 5.0 GB/s', 'weights 5.50 / 16.06 GB, 5.0 GB/s']);
  assert.equal(progressLine(1, undefined), undefined);
});
