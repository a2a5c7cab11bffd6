import assert from 'node:assert/strict';
import { quantizeQ8Groups } from '../../src/backend/cpu/quant-act.ts';
import type { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { quantizeRows } from '../../src/backend/cuda/fp8.ts';
import type { KernelDecl } from '../../src/backend/cuda/kernel.ts';
import { quantizeActivationsInto } from '../../src/backend/cuda/quant-linear.ts';
import { type CudaTensor, cuda, DTYPE_BYTES } from '../../src/backend/cuda/tensor.ts';
import { allocQuantizedX, type QuantizedX, type XForm } from '../../src/backend/cuda/x-form.ts';
import type { Model } from '../../src/models/model.ts';
import { quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { hostTensor } from './gpu.ts';
import { argmax, PagedSession } from './paged-session.ts';

// What the GPU tests of x's producers (the norms, the gated product: src/backend/cuda/x-form.ts) share: the copy a
// producer writes must be bit for bit what the linear's own quantizing launch writes from the producer's output.

/**
 * Arena poison no quantized output holds: q8 bytes 0x80 (level -128, d a negative number, sums of -32640; levels
 * lie in ±127, d ≥ 0 or NaN, sums in ±2032); e4m3 bytes 0xff (the code -NaN, which quantization never writes, and a
 * NaN scale, which no row takes).
 */
export const POISON: Record<XForm, number> = { q8: 0x80808080, e4m3: 0xffffffff };

/** Values rounded to the storage type, uploaded. */
export function upload(g: CudaBackend, shape: number[], v: Float32Array): CudaTensor {
  return cuda(g.loadWeight(hostTensor('t', shape, v)));
}

export function bytes(g: CudaBackend, ptr: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  g.ctx.drv.download(out, ptr);
  return out;
}

/** Bytes of the quantized copy: levels or codes, then scales. */
export function quantizedBytes(g: CudaBackend, q: QuantizedX, rows: number, n: number) {
  return { xq: bytes(g, q.xq, rows * n), xs: bytes(g, q.xs, q.form === 'q8' ? (rows * n) / 4 : rows * 4) };
}

/** The linear's own quantizing launch over `out` into fresh arena buffers (poisoned as the arena is). */
export function separately(g: CudaBackend, form: XForm, out: CudaTensor, rows: number, n: number): QuantizedX {
  const q = allocQuantizedX(g.ctx, form, rows, n);
  if (form === 'q8') quantizeActivationsInto(g.ctx, out.ptr, rows * n, q);
  else quantizeRows(g.ctx, q.xq, q.xs, out.ptr, rows, n);
  return q;
}

/** The first index where two byte arrays differ, -1 if none. */
export const firstDiff = (a: Uint8Array, b: Uint8Array) =>
  a.length !== b.length ? 0 : a.findIndex((v, i) => v !== b[i]);

/** The quantized copy against the CPU twin of the producer's own output: levels, d (NaN as NaN) and sums; codes, scales. */
export function checkTwin(
  form: XForm,
  got: { xq: Uint8Array; xs: Uint8Array },
  out: Float32Array,
  rows: number,
  n: number,
) {
  if (form === 'q8') {
    const want = quantizeQ8Groups(out);
    const levels = new Int8Array(got.xq.buffer);
    const bad = levels.findIndex((l, i) => l !== want.levels[i]);
    assert.equal(bad, -1, `level ${bad}: ${levels[bad]}, the twin's ${want.levels[bad]}`);
    const view = new DataView(got.xs.buffer);
    for (let i = 0; i < want.d.length; i++) {
      const [d, sums] = [view.getFloat32(8 * i, true), view.getInt32(8 * i + 4, true)];
      assert.ok(Object.is(d, want.d[i]), `group ${i}: d ${d}, the twin's ${want.d[i]}`);
      assert.deepEqual([(sums << 16) >> 16, sums >> 16], [want.sums[2 * i], want.sums[2 * i + 1]], `group ${i}: sums`);
    }
    return;
  }
  const want = quantizeFp8Rows(out, rows, n);
  const bad = firstDiff(got.xq, want.codes);
  assert.equal(bad, -1, `code ${bad}: ${got.xq[bad]}, the twin's ${want.codes[bad]}`);
  assert.deepEqual(new Float32Array(got.xs.buffer), want.scales, 'row scales');
}

/**
 * A producer run once plain and once writing `form`, in an arena poisoned with POISON[form]: the same 16-bit output,
 * and its quantized copy equal to the separate launch's over that output bit for bit, and to the CPU twin. Returns
 * the output on the host.
 */
export function checkProducer(
  g: CudaBackend,
  what: string,
  form: XForm,
  rows: number,
  n: number,
  produce: (form: XForm | null) => CudaTensor,
): Float32Array {
  g.ctx.arena.reset();
  g.ctx.arena.poison(POISON[form]);
  const size = rows * n * DTYPE_BYTES[g.ctx.dtype];
  const plain = produce(null);
  const fused = produce(form);
  assert.equal(plain.quantized, undefined, `${what}: the plain build writes no copy`);
  assert.equal(fused.quantized?.form, form, `${what}: the copy is attached to the output`);
  const outBytes = bytes(g, fused.ptr, size);
  assert.equal(firstDiff(outBytes, bytes(g, plain.ptr, size)), -1, `${what}: the 16-bit output is unchanged`);
  const got = quantizedBytes(g, fused.quantized!, rows, n);
  const want = quantizedBytes(g, separately(g, form, fused, rows, n), rows, n);
  assert.equal(firstDiff(got.xq, want.xq), -1, `${what}: levels/codes equal the separate launch's`);
  assert.equal(firstDiff(got.xs, want.xs), -1, `${what}: scales equal the separate launch's`);
  const out = g.toHost(fused);
  checkTwin(form, got, out, rows, n);
  return out;
}

/** Counts the launches' requests of `decl` while `run` runs (eager launches: each asks for its kernel). */
export function requestsOf(g: CudaBackend, decl: KernelDecl, run: () => void): number {
  const ctx = g.ctx;
  const original = ctx.kernel;
  let n = 0;
  ctx.kernel = ((d: KernelDecl, defines?: Record<string, number>) => {
    if (d === decl) n++;
    return original.call(ctx, d, defines);
  }) as typeof ctx.kernel;
  try {
    run();
  } finally {
    ctx.kernel = original;
  }
  return n;
}

/** Every linear of `backend` quantizes its own x: no producer is asked to write a form (CudaLinear.inputForm). */
export function withoutForms(backend: CudaBackend): CudaBackend {
  backend.linears.inputForm = () => null;
  return backend;
}

/**
 * `prompts` prefilled together, then `steps` greedy decode steps of all of them: the ids fed, the decode steps' logit
 * rows, and the requests of `decl` those steps made (`backend` eager).
 */
export function greedyDecode(
  backend: CudaBackend,
  model: Model,
  prompts: readonly (readonly number[])[],
  steps: number,
  decl: KernelDecl,
) {
  const session = new PagedSession(model, 16);
  let rows = session.step(prompts.map((tokens, seq) => ({ seq, tokens })));
  const ids: number[][] = [];
  const logits: Float32Array[] = [];
  let launches = 0;
  for (let i = 0; i < steps; i++) {
    const next = rows.map(argmax);
    ids.push(next);
    launches += requestsOf(backend, decl, () => {
      rows = session.step(next.map((token, seq) => ({ seq, tokens: [token] })));
    });
    logits.push(...rows.map((r) => Float32Array.from(r)));
  }
  return { ids, logits, launches };
}

/** Rows equal bit for bit (NaN as NaN). */
export function assertSameRows(got: readonly Float32Array[], want: readonly Float32Array[], what: string): void {
  assert.equal(got.length, want.length, `${what}: rows`);
  got.forEach((row, i) => {
    const j = row.findIndex((v, k) => !Object.is(v, want[i]![k]));
    assert.equal(j, -1, `${what}: row ${i} [${j}] ${row[j]} against ${want[i]![j]}`);
  });
}
