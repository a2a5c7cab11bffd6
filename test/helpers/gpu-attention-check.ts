/**
 * Runs the attention kernels on a paged problem on the GPU and checks them against the float64 reference: inputs
 * uploaded in the storage type, outputs poisoned with NaN first (test/gpu/attention-kernels.test.ts,
 * test/gpu/attention-sm90a.test.ts).
 */
import assert from 'node:assert/strict';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import type { AttentionDtype, PagedAttentionArgs } from '../../src/backend/cuda/flash-attention.ts';
import {
  fromStorageArray,
  maxAbsDiff,
  type PagedAttentionProblem,
  type PagedShape,
  type referencePagedAttention,
  relativeL2,
  toStorageArray,
} from './paged-attention-reference.ts';

/** Two NaNs of the storage type, the outputs' poison. */
const NAN_PAIR: Record<AttentionDtype, number> = { bf16: 0x7fc07fc0, f16: 0x7e007e00 };
const F32_NAN = 0x7fc00000;
/**
 * Bounds on O's relative L2 error. Inputs are exact in both types; the error is the rounding of the probabilities
 * to the storage type before P.V and of O itself. Emulating exactly that on the CPU over these cases gives bf16
 * 1.0e-3..2.2e-3 and fp16 8x less (three more mantissa bits), 1.2e-4..2.8e-4; each bound is ~4.5x its worst case.
 * The LSE comes from fp32 scores of exact inputs, the same arithmetic in both types.
 */
export const O_TOL: Record<AttentionDtype, number> = { bf16: 1e-2, f16: 1.25e-3 };
export const LSE_TOL = 2e-3;

export interface Case extends PagedShape {
  name: string;
}

/** Uploads the problem in `dtype`, poisons the outputs, runs `kernel`, returns O and LSE as read back. */
export function runOnGpu(
  h: CudaDriver,
  p: PagedAttentionProblem,
  dtype: AttentionDtype,
  kernel: (a: PagedAttentionArgs) => void,
) {
  const totalQ = p.cuSeqlensQ[p.seqs.length]!;
  const qElems = totalQ * p.numHeads * p.headDim;
  const bufs: bigint[] = [];
  const put = (data: ArrayBufferView) => {
    const ptr = h.alloc(data.byteLength);
    h.upload(ptr, data);
    bufs.push(ptr);
    return ptr;
  };
  const q = put(toStorageArray(p.q, dtype));
  const kCache = put(toStorageArray(p.kCache, dtype));
  const vCache = put(toStorageArray(p.vCache, dtype));
  const blockTables = put(p.blockTables);
  const contextLens = put(p.contextLens);
  const cuSeqlensQ = put(p.cuSeqlensQ);
  const out = h.alloc(qElems * 2);
  const lse = h.alloc(totalQ * p.numHeads * 4);
  bufs.push(out, lse);
  h.fill32(out, NAN_PAIR[dtype], qElems / 2);
  h.fill32(lse, F32_NAN, totalQ * p.numHeads);
  const args: PagedAttentionArgs = {
    q,
    qStride: p.numHeads * p.headDim,
    kCache,
    vCache,
    blockTables,
    maxBlocksPerSeq: p.maxBlocksPerSeq,
    contextLens,
    cuSeqlensQ,
    out,
    oStride: p.numHeads * p.headDim,
    lse,
    numSeqs: p.seqs.length,
    maxSeqlenQ: Math.max(...p.seqs.map((s) => s.qLen)),
    numHeads: p.numHeads,
    numKvHeads: p.numKvHeads,
    headDim: p.headDim,
    blockSize: p.blockSize,
    scale: p.scale,
    slidingWindow: p.slidingWindow,
    softcap: p.softcap,
  };
  kernel(args);
  h.sync();
  const outBits = new Uint16Array(qElems);
  const lseHost = new Float32Array(totalQ * p.numHeads);
  h.download(outBits, out);
  h.download(lseHost, lse);
  for (const b of bufs) h.free(b);
  return { out: fromStorageArray(outBits, dtype), lse: lseHost };
}

export type Reference = ReturnType<typeof referencePagedAttention>;

export function check(
  name: string,
  dtype: AttentionDtype,
  got: { out: Float32Array; lse: Float32Array },
  ref: Reference,
) {
  const errO = relativeL2(got.out, ref.out);
  const errLse = maxAbsDiff(got.lse, ref.lse);
  assert.ok(errO <= O_TOL[dtype], `${name} (${dtype}): relative L2 error of O ${errO} > ${O_TOL[dtype]}`);
  assert.ok(errLse <= LSE_TOL, `${name} (${dtype}): max LSE error ${errLse} > ${LSE_TOL}`);
}
