import type { MoeSpec } from '../../src/backend/moe-spec.ts';

/** A mixture-of-experts block's weights as flat arrays in `MoeWeights`' layouts (E experts, width I, hidden H). */
export interface MoeArrays {
  /** `[E, H]` */
  router: ArrayLike<number>;
  /** `[E, 2I, H]`: each expert's gate rows, then its up rows. */
  gateUp: ArrayLike<number>;
  /** `[E, H, I]` */
  down: ArrayLike<number>;
  /** Shared expert: gate/up `[2Is, H]`, down `[H, Is]`, optional sigmoid gate `[1, H]`. */
  shared?: { gateUp: ArrayLike<number>; down: ArrayLike<number>; gate?: ArrayLike<number> };
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/** One SwiGLU MLP in float64: down · (silu(gate · x) * (up · x)), weights from the given offsets. */
function swiglu(
  x: ArrayLike<number>,
  xOff: number,
  H: number,
  I: number,
  gu: ArrayLike<number>,
  guOff: number,
  down: ArrayLike<number>,
  downOff: number,
): Float64Array {
  const act = new Float64Array(I);
  for (let i = 0; i < I; i++) {
    let g = 0;
    let u = 0;
    for (let h = 0; h < H; h++) {
      g += gu[guOff + i * H + h]! * x[xOff + h]!;
      u += gu[guOff + (I + i) * H + h]! * x[xOff + h]!;
    }
    act[i] = silu(g) * u;
  }
  const y = new Float64Array(H);
  for (let h = 0; h < H; h++) for (let i = 0; i < I; i++) y[h] += down[downOff + h * I + i]! * act[i]!;
  return y;
}

/**
 * The block in float64, written the plain way: router logits, an explicit softmax over all experts, the top k by
 * sorting (the lower id first on a tie), optional renormalisation, then a dense loop over EVERY expert with weight 0
 * for those not chosen; plus the shared expert (sigmoid-gated where it has a gate).
 */
export function referenceMoe(
  x: ArrayLike<number>,
  T: number,
  H: number,
  E: number,
  I: number,
  w: MoeArrays,
  spec: MoeSpec,
): Float64Array {
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const logits = Array.from({ length: E }, (_, e) => {
      let s = 0;
      for (let h = 0; h < H; h++) s += w.router[e * H + h]! * x[t * H + h]!;
      return s;
    });
    const max = Math.max(...logits);
    const z = logits.reduce((a, l) => a + Math.exp(l - max), 0);
    const probs = logits.map((l) => Math.exp(l - max) / z);
    const order = probs.map((p, e) => [p, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const chosen = order.slice(0, spec.topK);
    const kept = chosen.reduce((a, [p]) => a + p, 0);
    const weight = new Float64Array(E);
    for (const [p, e] of chosen) weight[e] = spec.normTopK ? p / kept : p;
    for (let e = 0; e < E; e++) {
      const y = swiglu(x, t * H, H, I, w.gateUp, e * 2 * I * H, w.down, e * H * I);
      for (let h = 0; h < H; h++) out[t * H + h] += weight[e]! * y[h]!;
    }
    if (w.shared) {
      const Is = w.shared.gateUp.length / (2 * H);
      const y = swiglu(x, t * H, H, Is, w.shared.gateUp, 0, w.shared.down, 0);
      let g = 1;
      if (w.shared.gate) {
        let s = 0;
        for (let h = 0; h < H; h++) s += w.shared.gate[h]! * x[t * H + h]!;
        g = 1 / (1 + Math.exp(-s));
      }
      for (let h = 0; h < H; h++) out[t * H + h] += g * y[h]!;
    }
  }
  return out;
}
