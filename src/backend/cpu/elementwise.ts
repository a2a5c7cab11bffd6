import type { Activation, GatedActivation } from '../backend.ts';

export function addInto(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const ACTIVATIONS: Record<GatedActivation, (g: number) => number> = {
  silu: (g) => g / (1 + Math.exp(-g)),
  gelu_tanh: (g) => 0.5 * g * (1 + Math.tanh(SQRT_2_OVER_PI * (g + 0.044715 * g * g * g))),
};

/** out `[T, n]` = act(x[:, :n]) * x[:, n:] for x `[T, 2n]` (gate and up side by side in each row). */
export function actMulInto(x: Float32Array, out: Float32Array, T: number, n: number, act: GatedActivation): void {
  const f = ACTIVATIONS[act];
  for (let t = 0; t < T; t++) {
    const gate = 2 * t * n;
    const up = gate + n;
    for (let i = 0; i < n; i++) out[t * n + i] = f(x[gate + i]) * x[up + i];
  }
}

/** out = cap * tanh(x / cap), with torch's float32 steps (divide, tanh, multiply). */
export function softcapInto(x: Float32Array, cap: number, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(Math.tanh(Math.fround(x[i] / cap))) * cap;
}

const PLAIN_ACTIVATIONS: Record<Activation, (v: number) => number> = {
  gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  gelu_tanh: ACTIVATIONS.gelu_tanh,
  relu2: (v) => (v > 0 ? v * v : 0),
};

/** A plain MLP's activation: GELU exact (erf) or its tanh form (GPT-2's gelu_new), or ReLU². */
export function activationInto(x: Float32Array, out: Float32Array, act: Activation): void {
  const f = PLAIN_ACTIVATIONS[act];
  for (let i = 0; i < out.length; i++) out[i] = f(x[i]);
}

/** erf to ~1e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float32 activations. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}
