import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CompilePool } from './compile-pool.ts';
import type { CudaDriver, Handle } from './driver.ts';
import type { ArgList, Kernel, KernelDecl } from './kernel.ts';
import { kernelCacheKey, kernelCachePath } from './kernel-cache.ts';
import { compilerKey, type Nvrtc } from './nvrtc.ts';

/** The folder of the `.cu` kernel sources. */
export const kernelsDir = join(dirname(fileURLToPath(import.meta.url)), 'kernels');

/**
 * The target a module is built for: sources named `*_sm90a` (wgmma, setmaxnreg: instructions of the
 * architecture-specific target alone) for sm_90a, whose launchers pick them on compute capability 9.0 only; the rest
 * for the device's own arch.
 */
export function moduleArch(file: string, deviceArch: string): string {
  return file.endsWith('_sm90a') ? 'sm_90a' : deviceArch;
}

/** Compile-time defines that pick a kernel variant (dtype, head size, ...). */
export type Defines = Readonly<Record<string, number | string>>;

/**
 * Loads `.cu` files through NVRTC (cached on disk) for the device's arch; one module per (file, defines). Modules
 * `prefetch`ed are compiled in a pool of worker threads meanwhile, and taken from it when first asked for.
 */
export class KernelModules {
  private readonly modules = new Map<string, Handle>();
  private readonly functions = new Map<string, Kernel>();
  private readonly headers: string;
  readonly arch: string;
  private pool: CompilePool | null = null;
  /** Modules asked for that no prefetch planned (`file|defines`): each compiled on the critical path. */
  readonly unplanned: string[] = [];

  /** `cacheDir`: where compiled kernels are kept (CudaSettings.kernelCache). */
  constructor(
    private readonly drv: CudaDriver,
    /** Its `stats` say how many kernels were compiled or read from the cache, and the compile time. */
    readonly nvrtc: Nvrtc,
    private readonly cacheDir: string,
  ) {
    this.arch = `sm_${drv.info.ccMajor}${drv.info.ccMinor}`;
    this.headers = readdirSync(kernelsDir)
      .filter((f) => f.endsWith('.cuh'))
      .sort()
      .map((f) => readFileSync(join(kernelsDir, f), 'utf8'))
      .join('\n');
  }

  /**
   * The declared kernel built with `defines`. `maxDynamicSmem` raises the kernel's dynamic shared-memory limit when
   * it needs more than the default 48 KB.
   */
  get<A extends ArgList>(decl: KernelDecl<A>, defines: Defines = {}, maxDynamicSmem = 0): Kernel<A> {
    const { file, name: fn } = decl;
    const defs = sortedDefines(defines);
    const key = `${file}|${fn}|${defs.join(' ')}`;
    const cached = this.functions.get(key);
    if (cached) return cached as Kernel<A>;
    const modKey = `${file}|${defs.join(' ')}`;
    let mod = this.modules.get(modKey);
    if (!mod) {
      const b = this.build(file, defs);
      const planned = this.pool?.has(modKey) === true;
      if (this.pool && !planned) this.unplanned.push(modKey);
      const cubin =
        (planned ? this.pool!.take(modKey) : null) ??
        this.nvrtc.cubin(file, b.source, b.hashSource, b.options, moduleArch(file, this.arch), this.cacheDir);
      mod = this.drv.loadModule(cubin);
      this.modules.set(modKey, mod);
    }
    const handle = this.drv.getFunction(mod, fn);
    if (maxDynamicSmem > 48 * 1024) this.drv.setMaxDynamicShared(handle, maxDynamicSmem);
    const drv = this.drv;
    const name = `${file}.${fn}(${defs.join(' ')})`;
    const kernel: Kernel<A> = {
      name,
      launch: (grid, block, args: Readonly<Record<string, number | bigint>>, smem = 0) =>
        drv.launch(
          handle,
          name,
          grid,
          block,
          smem,
          decl.kinds,
          decl.names.map((n) => args[n]!),
        ),
      resources: () => drv.funcResources(handle),
    };
    this.functions.set(key, kernel);
    return kernel;
  }

  /** What NVRTC gets for a module, and what its cache key covers (the source and every header). */
  private build(file: string, defs: readonly string[]): { source: string; hashSource: string; options: string[] } {
    const source = readFileSync(join(kernelsDir, `${file}.cu`), 'utf8');
    return { source, hashSource: `${source}\n${this.headers}`, options: [`-I${kernelsDir}`, ...defs] };
  }

  /**
   * Hands the modules of `requests` not loaded yet to `pool` (cached ones are read at once, the rest compile in its
   * workers); `get` takes each from the pool when first asked for.
   */
  prefetch(requests: readonly { file: string; defines: Defines }[], pool: CompilePool): void {
    this.pool = pool;
    for (const r of requests) {
      const defs = sortedDefines(r.defines);
      const modKey = `${r.file}|${defs.join(' ')}`;
      if (this.modules.has(modKey)) continue;
      const b = this.build(r.file, defs);
      const arch = moduleArch(r.file, this.arch);
      const key = kernelCacheKey(b.hashSource, b.options, arch, compilerKey(this.nvrtc));
      pool.submit({
        key: modKey,
        name: r.file,
        source: b.source,
        options: [...b.options, `--gpu-architecture=${arch}`],
        cachePath: kernelCachePath(this.cacheDir, r.file, key),
        label: `${r.file}.cu (${[arch, ...defs].join(' ')})`,
      });
    }
  }
}

/** `-DNAME=value` for each define, in name order (one module per set, whatever order it was written in). */
function sortedDefines(defines: Defines): string[] {
  return Object.entries(defines)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `-D${k}=${v}`);
}
