import { LORA_CHUNK_ROWS, LORA_DTYPES, mergeLoraRows } from '../../primitives/lora-merge.ts';
import type { AttentionSpec } from '../backend.ts';
import { type AttentionBatch, type PagedKv, pagedAttention } from './attention.ts';
import {
  ATTENTION_PARAMS,
  type AttentionParams,
  CTRL,
  claimRows,
  FLOAT_OFFSET,
  JOB,
  KV_TYPES,
  META_ID,
  OUT_ID,
  partRange,
  QUANT_TYPES,
  RUNS_ID,
  type SharedArray,
  X_ID,
} from './job-layout.ts';
import type { KvPlane } from './kv-store.ts';
import { linearRows } from './matmul.ts';
import { linearQuantRows } from './quant-matmul.ts';
import type { QuantPart } from './quant-tensor.ts';
import type { RowSource } from './row-source.ts';
import { FILL_CHUNK, FILL_DTYPES, fillValues } from './weight-fill.ts';

/** Reads a job's parameters and shared buffers on the worker side and runs its share. */
export function runJob(ctrl: Int32Array, part: number, buffers: Map<number, SharedArray>): void {
  const p = CTRL.params;
  if (ctrl[CTRL.kind] === JOB.none) return;
  if (ctrl[CTRL.kind] === JOB.census) {
    ctrl[p + part - 1] = buffers.size;
    return;
  }
  const get = <A extends SharedArray>(id: number, type: abstract new (...args: never[]) => A): A => {
    const b = buffers.get(id);
    if (!(b instanceof type)) throw new Error(`buffer ${id} was never announced`);
    return b;
  };
  const f32 = (id: number) => get(id, Float32Array);
  const u8 = (id: number) => get(id, Uint8Array);
  const parts = ctrl[CTRL.parts]!;
  if (ctrl[CTRL.kind] === JOB.linear) {
    const [weight, T, n, m, offset] = [ctrl[p]!, ctrl[p + 1]!, ctrl[p + 2]!, ctrl[p + 3]!, ctrl[p + 4]!];
    const [start, end] = partRange(m, parts, part);
    linearRows(f32(X_ID), f32(weight).subarray(offset), f32(OUT_ID), T, n, m, start, end);
    return;
  }
  if (ctrl[CTRL.kind] === JOB.fill) {
    const [weight, dtype, count, from] = ctrl.subarray(p, p + 4);
    const [out, runs, stored] = [f32(weight!), get(RUNS_ID, Float64Array), FILL_DTYPES[dtype!]!];
    const fill = (s: number, e: number) => fillValues(runs, count!, stored, out, from! + s, from! + e);
    claimRows(ctrl, out.length - from!, parts, fill, FILL_CHUNK);
    return;
  }
  if (ctrl[CTRL.kind] === JOB.loraMerge) {
    const [w, dtype, at, fb, rows, cols, rank] = ctrl.subarray(p, p + 7);
    const scale = new Float64Array(ctrl.buffer, FLOAT_OFFSET, 1)[0]!;
    const [a, b] = [get(at!, Float64Array), get(fb!, Float64Array)];
    const merge = (s: number, e: number) =>
      mergeLoraRows(u8(w!), LORA_DTYPES[dtype!]!, a, b, scale, cols!, rank!, s, e);
    claimRows(ctrl, rows!, parts, merge, LORA_CHUNK_ROWS);
    return;
  }
  if (ctrl[CTRL.kind] === JOB.linearQuant) {
    const [blocks, type, T, n, m, first, rows, rowBytes, memory, offset, r0, r1] = ctrl.subarray(p, p + 12);
    // Blocks in a WebAssembly memory (memory >= 0) take the SIMD kernels there.
    const home = memory! >= 0 ? { memory: get(memory!, WebAssembly.Memory), offset: offset! } : undefined;
    const qp: QuantPart = { type: QUANT_TYPES[type!]!, rows: rows!, bytes: u8(blocks!), rowBytes: rowBytes!, home };
    const claimed: RowSource = (run) => claimRows(ctrl, r1! - r0!, parts, (a, b) => run(r0! + a, r0! + b));
    linearQuantRows(f32(X_ID), qp, f32(OUT_ID), T!, n!, m!, first!, claimed, part);
    return;
  }
  const a = Object.fromEntries(ATTENTION_PARAMS.map((k, i) => [k, ctrl[p + i]!])) as AttentionParams;
  const floats = new Float64Array(ctrl.buffer, FLOAT_OFFSET, 4);
  const spec: AttentionSpec = {
    numHeads: a.Hq,
    numKvHeads: a.Hk,
    headDim: a.D,
    scale: floats[0]!,
    slidingWindow: a.window,
    softcap: floats[1]!,
  };
  const type = KV_TYPES[a.kvType]!;
  const plane = (id: number, scale: number): KvPlane => ({ type, data: type === 'f32' ? f32(id) : u8(id), scale });
  const cache: PagedKv = {
    k: plane(a.k, floats[2]!),
    v: plane(a.v, floats[3]!),
    numKvHeads: a.numKvHeads,
    headDim: a.headDim,
  };
  const batch = unpackBatch(buffers.get(META_ID) as Int32Array, a.numSeqs, a.maxBlocks, a.blockSize);
  const [h0, h1] = partRange(a.Hq, parts, part, 1);
  // The LSE rows, when asked for, follow the T x Hq x D outputs in the output scratch.
  const out = f32(OUT_ID);
  const lse = a.withLse ? out.subarray(a.T * a.Hq * a.D) : undefined;
  pagedAttention(f32(X_ID), cache, spec, batch, out, h0, h1, lse);
}

/** The step metadata attention reads, laid out as cuSeqlensQ | contextLens | blockTables. */
function unpackBatch(meta: Int32Array, S: number, maxBlocks: number, blockSize: number): AttentionBatch {
  return {
    numSeqs: S,
    cuSeqlensQ: meta.subarray(0, S + 1),
    contextLens: meta.subarray(S + 1, 2 * S + 1),
    blockTables: meta.subarray(2 * S + 1, 2 * S + 1 + S * maxBlocks),
    maxBlocksPerSeq: maxBlocks,
    blockSize,
  };
}
