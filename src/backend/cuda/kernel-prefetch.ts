import type { CudaBackend } from './backend.ts';
import { CompilePool, compileWorkerCount } from './compile-pool.ts';
import { type KernelPlanModel, kernelPlan } from './kernel-plan.ts';

/**
 * Starts building the kernel modules `model` will need in worker threads (cached ones are read at once), so weights
 * load meanwhile and the first step finds its kernels ready. Returns the pool, whose stats the start-up line reports.
 */
export function prefetchKernels(backend: CudaBackend, model: KernelPlanModel): CompilePool {
  const { ctx, linears } = backend;
  const plan = kernelPlan(
    {
      dtype: ctx.dtype,
      device: ctx.drv.info,
      gemvTable: linears.gemvTable,
      gemv: linears.gemv,
      fp8Gemv: linears.fp8Gemv,
      sm90aPrefill: ctx.settings.prefillKernel === 'wgmma' && ctx.drv.info.ccMajor === 9 && ctx.drv.info.ccMinor === 0,
    },
    model,
  );
  const pool = new CompilePool({ nvrtcRoots: ctx.settings.cudaRoots }, compileWorkerCount(plan.length));
  ctx.mods.prefetch(plan, pool);
  return pool;
}
