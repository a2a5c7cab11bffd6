import type { Tensor } from '../backend.ts';
import type { Communicator } from '../parallel/communicator.ts';
import type { CudaBackend } from './backend.ts';
import type { CudaContext } from './context.ts';
import type { Nccl } from './nccl.ts';
import { CudaTensor, cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';

/**
 * The tensor-parallel collectives over NCCL, for rank backends driven by this one process (rank r is ranks[r], its
 * communicator on that backend's device). Each rank's result comes from its own step arena and its collective is
 * queued on its stream, so a decode step captured into a CUDA graph records the collectives with the kernels.
 */
export class NcclCommunicator implements Communicator {
  private readonly comms: bigint[];
  private released = false;

  constructor(
    private readonly ranks: readonly CudaBackend[],
    private readonly nccl: Nccl,
  ) {
    this.comms = nccl.initAll(ranks.map((b) => b.ctx.drv.info.index));
  }

  allReduce(parts: readonly Tensor[]): Tensor[] {
    const ins = parts.map(cuda);
    const outs = ins.map((t, r) => this.ranks[r]!.ctx.empty(t.shape, t.dtype));
    this.nccl.group(() => {
      ins.forEach((t, r) => {
        this.nccl.allReduce(t.ptr, outs[r]!.ptr, t.numel, t.dtype, this.comms[r]!, this.ranks[r]!.ctx.drv.stream);
      });
    });
    return outs;
  }

  /**
   * NCCL lays the ranks' `[T, c]` blocks one after another (`[N, T, c]`); the communicator's result has them side by
   * side (`[T, N·c]`), the same bytes when there is one rank or one row, else each block moved to its columns.
   */
  allGather(parts: readonly Tensor[]): Tensor[] {
    const ins = parts.map(cuda);
    const n = ins.length;
    const { dtype, shape } = ins[0]!;
    const [rows, cols] = rowsCols(ins[0]!);
    const gathered = ins.map((t, r) => this.ranks[r]!.ctx.empty([n * t.numel], dtype));
    this.nccl.group(() => {
      ins.forEach((t, r) => {
        this.nccl.allGather(t.ptr, gathered[r]!.ptr, t.numel, dtype, this.comms[r]!, this.ranks[r]!.ctx.drv.stream);
      });
    });
    const outShape = [...shape.slice(0, -1), n * cols];
    if (n === 1 || rows === 1) return gathered.map((g) => new CudaTensor(outShape, dtype, g.ptr));
    return gathered.map((g, r) => sideBySide(this.ranks[r]!.ctx, g, n, outShape));
  }

  /** Destroys the communicators, once (after the rank backends destroyed the graphs that captured them). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const c of this.comms) this.nccl.destroy(c);
  }
}

/**
 * `n` blocks of `[rows, cols]` one after another in `blocks` → `[rows, n·cols]` (shaped `shape`) with block j in
 * columns j·cols onwards: one 2-D copy per block, on the context's stream.
 */
export function sideBySide(ctx: CudaContext, blocks: CudaTensor, n: number, shape: readonly number[]): CudaTensor {
  const out = ctx.empty(shape, blocks.dtype);
  const [rows, width] = rowsCols(out);
  const block = (width / n) * DTYPE_BYTES[blocks.dtype];
  for (let j = 0; j < n; j++) {
    ctx.drv.copy2d(out.ptr + BigInt(j * block), n * block, blocks.ptr + BigInt(j * rows * block), block, block, rows);
  }
  return out;
}
