import type { AttentionSpec, LayerKvCache, StepContext, Tensor } from '../backend.ts';
import { pagedAttention } from './attention.ts';
import { addBias, linearF32 } from './matmul.ts';
import type { MatMul } from './moe.ts';
import { linearQuantized } from './quant-matmul.ts';
import { QuantCpuTensor } from './quant-tensor.ts';
import { pagedOf } from './step-context.ts';
import { CpuTensor, cpu, rowsCols } from './tensor.ts';
import { CpuThreads } from './threads.ts';

// The CPU backend's ops that are split over the worker pool when a call is large enough: each part is computed by the
// same code either way, so the results are those of one thread.

/** The worker pool, when `threads` > 1 and `operand` is in shared memory. */
function workers(threads: number, operand: Float32Array | Uint8Array): CpuThreads | null {
  return threads > 1 && operand.buffer instanceof SharedArrayBuffer ? CpuThreads.get(threads) : null;
}

/** x `[T, n]` times weight `[m, n]`ᵀ plus bias; split by output columns (float) or row chunks (quantized blocks). */
export function threadedLinear(x: Tensor, weight: Tensor, bias: Tensor | undefined, threads: number): CpuTensor {
  if (weight instanceof QuantCpuTensor) {
    const [T, n] = rowsCols(x);
    const pool = workers(threads, weight.parts[0]!.bytes);
    const out = linearQuantized(cpu(x).data, weight, T, n, pool, bias ? cpu(bias).data : null);
    return new CpuTensor([T, weight.shape[0]], out);
  }
  const xt = cpu(x);
  const w = cpu(weight);
  const [T, n] = rowsCols(xt);
  const [m, wn] = w.shape as [number, number];
  if (wn !== n) throw new Error(`linear: input has ${n} features, weight is [${w.shape}]`);
  const out = CpuTensor.zeros([T, m]);
  const pool = workers(threads, w.data);
  if (pool?.worthIt(T * n * m) && m >= 16) {
    pool.linear(xt.data, w.data, out.data, T, n, m);
    if (bias) addBias(out.data, cpu(bias).data, T, m);
  } else {
    linearF32(xt.data, w.data, bias ? cpu(bias).data : null, out.data, T, n, m);
  }
  return out;
}

/** `threadedLinear` without bias over a matrix inside a stacked weight (floats or blocks): one expert's projection. */
export function threadedMatMul(threads: number): MatMul {
  return (x, weight, firstRow, out, T, n, m) => {
    if (weight instanceof QuantCpuTensor) {
      const pool = workers(threads, weight.parts[0]!.bytes);
      out.set(linearQuantized(x, weight, T, n, pool, null, { start: firstRow, count: m }));
      return;
    }
    const w = cpu(weight).data;
    const wOffset = firstRow * n;
    const pool = workers(threads, w);
    if (pool?.worthIt(T * n * m) && m >= 16) pool.linear(x, w, out, T, n, m, wOffset);
    else linearF32(x, w.subarray(wOffset, wOffset + m * n), null, out, T, n, m);
  };
}

/** Paged attention of q over the cache, split by query heads; each row's log-sum-exp into `lse` when given. */
export function threadedPagedAttention(
  q: Tensor,
  cache: LayerKvCache,
  spec: AttentionSpec,
  step: StepContext,
  threads: number,
  lse?: CpuTensor,
): CpuTensor {
  const qt = cpu(q);
  const out = CpuTensor.zeros(qt.shape);
  const kv = pagedOf(cache);
  const b = step.batch;
  let pairs = 0;
  for (let s = 0; s < b.numSeqs; s++) pairs += (b.cuSeqlensQ[s + 1] - b.cuSeqlensQ[s]) * b.contextLens[s];
  const pool = workers(threads, kv.k.data);
  if (pool?.worthIt(2 * pairs * spec.numHeads * spec.headDim) && spec.numHeads > 1) {
    pool.attention(qt.data, kv, spec, b, out.data, lse?.data);
  } else {
    pagedAttention(qt.data, kv, spec, b, out.data, 0, spec.numHeads, lse?.data);
  }
  return out;
}
