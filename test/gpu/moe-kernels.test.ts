import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend, DType, MoeSpec, MoeWeights } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { moe } from '../../src/backend/cuda/moe.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';

const skip = gpuSkip();
/** Relative L2 allowed against the f32 CPU twin (inputs already rounded to the storage type). */
const TOL: Record<DType, number> = { f32: 2e-5, f16: 5e-3, bf16: 1e-2 };
const cpu = new CpuBackend();
let seed = (Date.now() & 0xffff) * 1000;

interface Case {
  T: number;
  H: number;
  E: number;
  I: number;
  spec: MoeSpec;
  /** Shared expert width, 0: none. */
  Is?: number;
  gated?: boolean;
  /**
   * A dense random router (f32 only). Otherwise the router is one-hot over the first E hidden columns, so the router
   * logits are x's own values on both backends exactly and 16-bit rounding cannot swap two near-tied experts.
   */
  randomRouter?: boolean;
}

/** The same random MoE weights and input on both backends; the GPU arena is poisoned before the op runs. */
function run(g: CudaBackend, dtype: DType, c: Case): { got: Float32Array; want: Float32Array } {
  const load = (b: Backend, name: string, shape: number[], v: Float32Array) => b.loadWeight(hostTensor(name, shape, v));
  const rand = (shape: number[], scale: number) =>
    randomValues(
      shape.reduce((a, d) => a * d, 1),
      seed++,
      scale,
      dtype,
    );
  const { T, H, E, I, Is = 0 } = c;
  const router = c.randomRouter ? rand([E, H], 1) : new Float32Array(E * H);
  if (!c.randomRouter) for (let e = 0; e < E; e++) router[e * H + e] = 1;
  const parts: [string, number[], Float32Array][] = [
    ['router', [E, H], router],
    ['gate_up', [E, 2 * I, H], rand([E, 2 * I, H], 1 / Math.sqrt(H))],
    ['down', [E, H, I], rand([E, H, I], 1 / Math.sqrt(I))],
  ];
  if (Is) {
    parts.push(['shared.gate_up', [2 * Is, H], rand([2 * Is, H], 1 / Math.sqrt(H))]);
    parts.push(['shared.down', [H, Is], rand([H, Is], 1 / Math.sqrt(Is))]);
    if (c.gated) parts.push(['shared.gate', [1, H], rand([1, H], 1)]);
  }
  const x = rand([T, H], 2);
  const weights = (b: Backend): MoeWeights => {
    const [r, gu, d, sgu, sd, sg] = parts.map(([name, shape, v]) => load(b, name, shape, v));
    return { router: r!, gateUp: gu!, down: d!, shared: sgu && sd ? { gateUp: sgu, down: sd, gate: sg } : undefined };
  };
  const gw = weights(g);
  const gx = load(g, 'x', [T, H], x);
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const got = g.toHost(moe(g.ctx, g.linears, gx, gw, c.spec));
  const want = cpu.toHost(cpu.moe(load(cpu, 'x', [T, H], x), weights(cpu), c.spec));
  return { got, want };
}

const CASES: Case[] = [
  { T: 1, H: 64, E: 8, I: 48, spec: { topK: 2, normTopK: true } },
  { T: 7, H: 96, E: 8, I: 40, spec: { topK: 2, normTopK: false }, Is: 80, gated: true },
  { T: 3, H: 256, E: 128, I: 96, spec: { topK: 8, normTopK: true } },
  { T: 70, H: 128, E: 16, I: 72, spec: { topK: 4, normTopK: true } },
  { T: 300, H: 200, E: 60, I: 36, spec: { topK: 4, normTopK: false }, Is: 144, gated: true },
  { T: 33, H: 64, E: 4, I: 32, spec: { topK: 1, normTopK: true }, Is: 64 },
  // The grouped GEMV (up to 64 grouped rows): at its limit, one row past it, and a hidden size that is not a whole
  // number of 16-byte vectors in 16 bits (the tile kernel takes those, as it takes float32 past 64 rows).
  { T: 8, H: 512, E: 16, I: 256, spec: { topK: 8, normTopK: true } },
  { T: 9, H: 128, E: 16, I: 64, spec: { topK: 8, normTopK: true } },
  { T: 2, H: 60, E: 8, I: 36, spec: { topK: 2, normTopK: false } },
  // Past 64 rows in 16 bits the tensor-core GEMM: experts of ~100 rows each span two of its 64-row tiles.
  { T: 200, H: 64, E: 4, I: 40, spec: { topK: 2, normTopK: true } },
];

describe('CUDA mixture-of-experts kernels against the CPU backend', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    test(`routing, grouped GEMMs and combine over ragged shapes (${dtype})`, { skip }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      for (const c of CASES) {
        const { got, want } = run(g, dtype, c);
        const e = relL2(got, want);
        assert.ok(
          e <= TOL[dtype],
          `T ${c.T} H ${c.H} E ${c.E} I ${c.I} k ${c.spec.topK}: relative L2 ${e} (seed ${seed})`,
        );
      }
    });
  }

  test('a dense random router (f32)', { skip }, () => {
    const g = new CudaBackend({ dtype: 'f32', graphs: false });
    for (const c of CASES) {
      const { got, want } = run(g, 'f32', { ...c, randomRouter: true });
      assert.ok(relL2(got, want) <= TOL.f32, `T ${c.T} E ${c.E}: relative L2 ${relL2(got, want)} (seed ${seed})`);
    }
  });
});
