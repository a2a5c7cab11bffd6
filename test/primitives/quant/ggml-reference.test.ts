import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import koffi from 'koffi';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import { codecOf, dequantize, quantize } from '../../../src/primitives/quant/index.ts';
import { mulberry32 } from '../../../src/util/random.ts';

/**
 * pagoda's quantizers against ggml's own reference quantizers (`quantize_row_*_ref`, what llama-quantize runs without
 * an importance matrix), called in node-llama-cpp's prebuilt libggml-base through koffi. The 32-value types take the
 * same float32 steps, so their blocks are ggml's byte for byte. The k-quants search their scales in pagoda's own way
 * (quant/fit.ts): measured, their error (RMS of dequantized minus input) is 0.954-1.011x ggml's on these rows, so
 * 1.02x is the bound.
 */
function ggmlBase(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    // The package exports its dist/index.js; its binaries lie beside dist.
    const entry = createRequire(import.meta.url).resolve(`@node-llama-cpp/linux-${process.arch}`);
    const lib = join(dirname(entry), '..', 'bins', `linux-${process.arch}`, 'libggml-base.so');
    return existsSync(lib) ? lib : null;
  } catch {
    return null;
  }
}

/**
 * libggml-base, loaded once for the process (ggml installs a terminate handler as it loads and asserts it was not
 * installed already, so a second load after an unload aborts), or why not.
 */
function loadGgml(): ReturnType<typeof koffi.load> | string {
  const path = ggmlBase();
  if (!path) return "node-llama-cpp's CPU build for this platform (libggml-base.so) is not installed here";
  try {
    return koffi.load(path);
  } catch (err) {
    return `${path} did not load: ${(err as Error).message}`;
  }
}

const loaded = loadGgml();
const lib = typeof loaded === 'string' ? null : loaded;
const skip = typeof loaded === 'string' ? loaded : false;
const LEGACY: QuantType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0'];
const K_QUANTS: QuantType[] = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];

/** ggml's reference quantizer of `type` over `x`. */
function ggmlQuantize(type: QuantType, x: Float32Array): Uint8Array {
  const name = `quantize_row_${type.replace('_k', '_K')}_ref`;
  const fn = lib!.func(`void ${name}(const float *x, _Out_ uint8_t *y, int64_t k)`);
  const out = new Uint8Array(quantize(type, x).length);
  fn(x, out, x.length);
  return out;
}

/** Rows of four shapes: uniform, heavy-tailed (cubed), Gaussian with an outlier every 97 values, a grid of sixteenths. */
function rows(n: number, seed: number): Float32Array[] {
  const r = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return [
    Float32Array.from({ length: n }, () => r() * 2 - 1),
    Float32Array.from({ length: n }, () => (r() * 2 - 1) ** 3 * 5),
    Float32Array.from({ length: n }, (_, i) => gauss() * (i % 97 === 0 ? 8 : 1)),
    Float32Array.from({ length: n }, () => Math.round((r() - 0.5) * 200) / 16),
  ];
}

/**
 * Blocks of 32 whose values sit where Q4_0's x / d + 8.5 (or Q5_0's + 16.5) is a whole number, the block's first value
 * m setting d = m / -8 (or m / -16): the levels float32 and float64 steps round apart.
 */
function boundaryRow(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const row = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const steps = b % 2 ? 8 : 16;
    const m = -(0.5 + r());
    const d = Math.fround(m / -steps);
    row[32 * b] = m;
    for (let j = 1; j < 32; j++) row[32 * b + j] = Math.fround((Math.floor(r() * (2 * steps - 1)) + 0.5 - steps) * d);
  }
  return row;
}

test("the 32-value types' blocks are ggml's reference quantizer's, byte for byte", { skip }, () => {
  for (const type of LEGACY) {
    for (const [shape, x] of [...rows(32 * 512, 11), boundaryRow(32 * 512, 13)].entries()) {
      const ours = quantize(type, x);
      const theirs = ggmlQuantize(type, x);
      const bytes = codecOf(type).blockBytes;
      const at = ours.findIndex((b, i) => b !== theirs[i]);
      assert.equal(at, -1, `${type} rows ${shape}: block ${Math.floor(at / bytes)} differs`);
    }
  }
});

test("the k-quants' error is within 1.02x of ggml's reference quantizer's on the same rows", { skip }, () => {
  const n = 256 * 256;
  const rms = (type: QuantType, blocks: Uint8Array, x: Float32Array) => {
    const v = dequantize(type, blocks, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += (v[i]! - x[i]!) ** 2;
    return Math.sqrt(s / n);
  };
  for (const type of K_QUANTS) {
    for (const [shape, x] of rows(n, 7).entries()) {
      const ratio = rms(type, quantize(type, x), x) / rms(type, ggmlQuantize(type, x), x);
      assert.ok(ratio < 1.02, `${type} rows ${shape}: ${ratio.toFixed(4)}x ggml's error`);
    }
  }
});
