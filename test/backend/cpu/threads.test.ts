import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { partRange } from '../../../src/backend/cpu/threads.ts';

const f32 = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

test('output columns split into parts cover every column once, in blocks of 8', () => {
  for (const [m, parts] of [
    [1000, 3],
    [17, 4],
    [8, 2],
    [4096, 8],
  ] as const) {
    const seen = new Array(m).fill(0);
    for (let p = 0; p < parts; p++) {
      const [start, end] = partRange(m, parts, p);
      assert.ok(start % 8 === 0 || start === m);
      for (let o = start; o < end; o++) seen[o]++;
    }
    assert.ok(
      seen.every((c) => c === 1),
      `m ${m} parts ${parts}`,
    );
  }
});

test('linear split over worker threads gives exactly the single-thread result', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  for (const [T, n, m] of [
    [1, 512, 1000],
    [5, 300, 333],
    [2, 1024, 520],
  ] as const) {
    const host = {
      name: 'w',
      shape: [m, n],
      dtype: 'f32' as const,
      bytes: new Uint8Array(f32(m * n, Math.sin).buffer),
    };
    const bias = new CpuTensor(
      [m],
      f32(m, (i) => i / m),
    );
    const x = new CpuTensor([T, n], f32(T * n, Math.cos));
    const want = one.toHost(one.linear(x, one.loadWeight(host), bias));
    const w3 = three.loadWeight(host);
    // Twice: the second call reuses the weight the workers already know and the grown scratch buffers.
    for (let r = 0; r < 2; r++)
      assert.deepEqual(three.toHost(three.linear(x, w3, bias)), want, `[${T}, ${n}] x [${m}, ${n}]`);
  }
});
