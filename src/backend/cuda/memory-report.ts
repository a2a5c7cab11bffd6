import type { CudaContext } from './context.ts';

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** What a backend holds beside its context's own buffers. */
export interface HeldMemory {
  kvCacheBytes: number;
  gemmWorkspaceBytes: number;
  dequantScratchBytes: number;
  /** The fused quantized GEMM's split-K partials. */
  quantGemmWorkspaceBytes: number;
  /** The largest expert stack kept in blocks, as values (past a decode step's rows). */
  expertScratchBytes: number;
  /** Quantized weights dequantized at load (1-D, transposed, expert stacks of several types). */
  dequantizedAtLoad: number;
}

/** The start-up report's line: the device, then what it holds (weights, KV cache, arena, scratch). */
export function memoryReport(ctx: CudaContext, held: HeldMemory): string {
  const { drv, weights, arena, steps, dtype } = ctx;
  const { free, total } = drv.memInfo();
  const i = drv.info;
  return [
    `${i.name} (sm_${i.ccMajor}${i.ccMinor}, ${i.smCount} SMs), ${gib(total)} total, ${gib(free)} free`,
    `weights ${gib(weights.usedBytes)} in ${weights.allocations} allocation(s) (${dtype})`,
    `KV cache ${gib(held.kvCacheBytes)}`,
    `activation arena ${mib(arena.capacityBytes)}`,
    `GEMM workspace ${mib(held.gemmWorkspaceBytes)}, pinned step staging ${mib(steps.pinnedBytes)}`,
    ...(held.dequantScratchBytes ? [`dequantization scratch ${mib(held.dequantScratchBytes)}`] : []),
    ...(held.quantGemmWorkspaceBytes ? [`quantized GEMM workspace ${mib(held.quantGemmWorkspaceBytes)}`] : []),
    ...(held.expertScratchBytes ? [`expert dequantization scratch ${mib(held.expertScratchBytes)}`] : []),
    ...(held.dequantizedAtLoad ? [`${held.dequantizedAtLoad} quantized weights dequantized at load`] : []),
  ].join('; ');
}
