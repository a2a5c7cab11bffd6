/**
 * RMSNorm of each row of x `[rows, n]` into out (accumulated in f64, as the reference does in f32 with care), scaled
 * by `offset + w` rounded to f32 (Gemma's 1 + w, as transformers adds it in float32).
 */
export function rmsNormRows(
  x: Float32Array,
  w: Float32Array,
  eps: number,
  out: Float32Array,
  rows: number,
  n: number,
  offset = 0,
) {
  const scale = offset === 0 ? w : w.map((v) => offset + v);
  for (let r = 0; r < rows; r++) {
    const b = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[b + i] * x[b + i];
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[b + i] = x[b + i] * inv * scale[i];
  }
}

/** LayerNorm of each row of x `[rows, n]` (biased variance, as torch does). */
export function layerNormRows(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array,
  eps: number,
  out: Float32Array,
  rows: number,
  n: number,
) {
  for (let r = 0; r < rows; r++) {
    const b = r * n;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[b + i];
    const mean = sum / n;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const d = x[b + i] - mean;
      v += d * d;
    }
    const inv = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) out[b + i] = (x[b + i] - mean) * inv * w[i] + bias[i];
  }
}
