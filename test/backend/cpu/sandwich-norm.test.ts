import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend, Tensor } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { bf16Bits } from '../../../src/primitives/float-bits.ts';
import { hostTensor, randomValues } from '../../helpers/gpu.ts';
import { LowPrecisionCpu } from '../../helpers/low-precision-cpu.ts';

// addRmsNorm with x's own norm (Gemma 2/3's sandwich: residual += rmsNorm(x, xNorm), then the next norm) is the
// two-op sequence it replaces, bit for bit: rmsNorm(x, xNorm), then addRmsNorm of that output.

let seed = (Date.now() & 0xffff) * 1000;
const SHAPES = [
  [1, 7],
  [3, 64],
  [2, 3584],
] as const;
const EPS = 1e-6;
const bf16 = (v: number) => new Float32Array(new Uint32Array([bf16Bits(v) << 16]).buffer)[0]!;

/** Fresh inputs of `rows x n` on `b`: the norm weights loaded under a layer norm's name (a rounding point's). */
function inputs(b: Backend, rows: number, n: number) {
  const x = randomValues(rows * n, seed++, 4, 'bf16');
  const residual = randomValues(rows * n, seed++, 2);
  const norm = (name: string) =>
    b.loadWeight(hostTensor(`model.layers.0.${name}.weight`, [n], randomValues(n, seed++, 0.5, 'bf16')));
  const fresh = (v: Float32Array): Tensor => new CpuTensor([rows, n], v.slice());
  return { x, residual, xNorm: norm('post_attention_layernorm'), weight: norm('pre_feedforward_layernorm'), fresh };
}

/** The fused op and the two ops it replaces, each on a fresh copy of the residual (addRmsNorm updates it in place). */
function bothWays(b: Backend, rows: number, n: number, offset: number) {
  const { x, residual, xNorm, weight, fresh } = inputs(b, rows, n);
  const fused = b.addRmsNorm(fresh(x), fresh(residual), weight, EPS, offset, undefined, xNorm);
  const normed = b.rmsNorm(fresh(x), xNorm, EPS, offset);
  const twoOps = b.addRmsNorm(normed, fresh(residual), weight, EPS, offset);
  const plain = b.addRmsNorm(fresh(x), fresh(residual), weight, EPS, offset);
  return {
    residual,
    normed: b.toHost(normed),
    fused: { out: b.toHost(fused.out), residual: b.toHost(fused.residual) },
    twoOps: { out: b.toHost(twoOps.out), residual: b.toHost(twoOps.residual) },
    plain: b.toHost(plain.out),
    x,
    xNorm: b.toHost(xNorm),
  };
}

test('float32: the fused sandwich norm is rmsNorm then addRmsNorm bit for bit, x normalized as the formula says', () => {
  const b = new CpuBackend({ threads: 1 });
  for (const [rows, n] of SHAPES) {
    for (const offset of [0, 1]) {
      const r = bothWays(b, rows, n, offset);
      const what = `${rows}x${n}, offset ${offset}`;
      assert.deepEqual(r.fused.out, r.twoOps.out, `${what}: out`);
      assert.deepEqual(r.fused.residual, r.twoOps.residual, `${what}: residual`);
      assert.notDeepEqual(r.fused.out, r.plain, `${what}: x's norm changes the output`);
      // The residual against a float64 RMSNorm of x (offset + w rounded to float32, as rmsNorm documents).
      for (let row = 0; row < rows; row++) {
        const xs = r.x.subarray(row * n, (row + 1) * n);
        const inv = 1 / Math.sqrt(xs.reduce((s, v) => s + v * v, 0) / n + EPS);
        for (let i = 0; i < n; i++) {
          const at = row * n + i;
          const want = r.residual[at]! + xs[i]! * inv * Math.fround(offset + r.xNorm[i]!);
          assert.ok(Math.abs(r.fused.residual[at]! - want) <= 1e-5 * (1 + Math.abs(want)), `${what}: residual ${at}`);
        }
      }
    }
  }
});

test('bf16 emulation: x normalized and rounded to bf16 before the add, as the unfused norm rounds its output', () => {
  const b = new LowPrecisionCpu('bf16');
  for (const [rows, n] of SHAPES) {
    for (const offset of [0, 1]) {
      const r = bothWays(b, rows, n, offset);
      const what = `${rows}x${n}, offset ${offset}`;
      assert.deepEqual(r.fused.out, r.twoOps.out, `${what}: out`);
      assert.deepEqual(r.fused.residual, r.twoOps.residual, `${what}: residual`);
      assert.ok(
        r.normed.every((v) => bf16(v) === v),
        `${what}: the norm of x is stored in bf16`,
      );
      // The float residual stream takes the rounded norm of x (CUDA's rounding points leave the residual float).
      const want = r.residual.map((v, i) => v + r.normed[i]!);
      assert.deepEqual(r.fused.residual, want, `${what}: residual + the rounded norm`);
    }
  }
});
