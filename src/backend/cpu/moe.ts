import type { Tensor } from '../backend.ts';
import type { MoeSpec, MoeWeights } from '../moe-spec.ts';
import { actMulInto } from './elementwise.ts';
import { cpu } from './tensor.ts';

/**
 * out `[T, m]` = x `[T, n]` · wᵀ, where w is the `[m, n]` matrix starting at row `firstRow` of `w` (one expert of a
 * stacked weight, float `[E, m, n]` or blocks `[E · m, n]`). The backend passes its own, which splits large products
 * over the worker pool.
 */
export type MatMul = (
  x: Float32Array,
  w: Tensor,
  firstRow: number,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
) => void;

/** Each token's experts (`[T, k]`, most probable first) and their routing weights. */
export interface Routing {
  experts: Int32Array;
  weights: Float32Array;
}

/**
 * Softmax over each token's router logits `[T, E]` (in float64), the k most probable experts (the lower id first on
 * a tie), their probabilities divided by their sum when `normTopK`.
 */
export function routeTokens(logits: Float32Array, T: number, E: number, spec: MoeSpec): Routing {
  const { topK: k, normTopK } = spec;
  if (!Number.isInteger(k) || k < 1 || k > E) throw new Error(`moe: top-k ${k} outside 1..${E} experts`);
  const experts = new Int32Array(T * k);
  const weights = new Float32Array(T * k);
  const probs = new Float64Array(E);
  const taken = new Uint8Array(E);
  for (let t = 0; t < T; t++) {
    const row = t * E;
    let max = Number.NEGATIVE_INFINITY;
    for (let e = 0; e < E; e++) max = Math.max(max, logits[row + e]!);
    let z = 0;
    for (let e = 0; e < E; e++) z += probs[e] = Math.exp(logits[row + e]! - max);
    taken.fill(0);
    let kept = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken[e] && (best < 0 || probs[e]! > probs[best]!)) best = e;
      taken[best] = 1;
      experts[t * k + j] = best;
      kept += probs[best]!;
    }
    const scale = normTopK ? 1 / kept : 1 / z;
    for (let j = 0; j < k; j++) weights[t * k + j] = probs[experts[t * k + j]!]! * scale;
  }
  return { experts, weights };
}

/** Per expert, the tokens routed to it and their routing weights (tokens in order): its rows for one GEMM. */
function groupByExpert(routing: Routing, E: number, k: number): { tokens: number[]; scales: number[] }[] {
  const groups = Array.from({ length: E }, () => ({ tokens: [] as number[], scales: [] as number[] }));
  for (let i = 0; i < routing.experts.length; i++) {
    const g = groups[routing.experts[i]!]!;
    g.tokens.push(Math.floor(i / k));
    g.scales.push(routing.weights[i]!);
  }
  return groups;
}

/**
 * The mixture-of-experts block on the CPU (see `Backend.moe`): tokens grouped by expert, and only the experts some
 * token chose are computed, each as two GEMMs over its gathered rows; results are scattered back weighted.
 */
export function moeInto(
  x: Float32Array,
  T: number,
  H: number,
  weights: MoeWeights,
  spec: MoeSpec,
  matmul: MatMul,
  out: Float32Array,
): void {
  // The experts' widths come from the router and the stacks' sizes: a stack kept in blocks is 2-D, [E · rows, cols].
  const router = cpu(weights.router);
  const E = router.shape[0]!;
  const rowsOf = (w: Tensor) => w.shape.reduce((a, d) => a * d, 1) / w.shape[w.shape.length - 1]! / E;
  const twoI = rowsOf(weights.gateUp);
  const I = twoI / 2;
  const down = weights.down;
  const downCols = down.shape[down.shape.length - 1];
  if (router.shape[1] !== H || weights.gateUp.shape.at(-1) !== H || rowsOf(down) !== H || downCols !== I) {
    throw new Error(
      `moe: router [${router.shape}], gate/up [${weights.gateUp.shape}], down [${down.shape}] do not agree`,
    );
  }
  const logits = new Float32Array(T * E);
  matmul(x, router, 0, logits, T, H, E);
  const groups = groupByExpert(routeTokens(logits, T, E, spec), E, spec.topK);
  for (let e = 0; e < E; e++) {
    const { tokens: rows, scales } = groups[e]!;
    if (!rows.length) continue;
    const n = rows.length;
    const xe = new Float32Array(n * H);
    rows.forEach((t, r) => {
      xe.set(x.subarray(t * H, (t + 1) * H), r * H);
    });
    const y = swiglu(xe, n, H, I, weights.gateUp, e * twoI, down, e * H, matmul);
    rows.forEach((t, r) => {
      const s = scales[r]!;
      for (let h = 0; h < H; h++) out[t * H + h] += s * y[r * H + h]!;
    });
  }
  if (weights.shared) addSharedExpert(x, T, H, weights.shared, matmul, out);
}

/** down(silu(gate(x)) * up(x)) for x `[n, H]`, gate/up `[2I, H]` and down `[H, I]` from the given rows of theirs. */
function swiglu(
  x: Float32Array,
  n: number,
  H: number,
  I: number,
  gateUp: Tensor,
  gateUpRow: number,
  down: Tensor,
  downRow: number,
  matmul: MatMul,
): Float32Array {
  const gu = new Float32Array(n * 2 * I);
  matmul(x, gateUp, gateUpRow, gu, n, H, 2 * I);
  const act = new Float32Array(n * I);
  actMulInto(gu, act, n, I, 'silu');
  const y = new Float32Array(n * H);
  matmul(act, down, downRow, y, n, I, H);
  return y;
}

/** out += g · sharedExpert(x), g = sigmoid(x · gateᵀ) per token when the shared expert is gated, else 1. */
function addSharedExpert(
  x: Float32Array,
  T: number,
  H: number,
  shared: NonNullable<MoeWeights['shared']>,
  matmul: MatMul,
  out: Float32Array,
): void {
  const Is = shared.gateUp.shape[0]! / 2;
  const y = swiglu(x, T, H, Is, shared.gateUp, 0, shared.down, 0, matmul);
  const gateLogits = new Float32Array(T);
  if (shared.gate) matmul(x, shared.gate, 0, gateLogits, T, H, 1);
  for (let t = 0; t < T; t++) {
    const g = shared.gate ? 1 / (1 + Math.exp(-gateLogits[t]!)) : 1;
    for (let h = 0; h < H; h++) out[t * H + h] += g * y[t * H + h]!;
  }
}
