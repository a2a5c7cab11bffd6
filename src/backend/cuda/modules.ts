import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaDriver, Handle } from './driver.ts';
import type { ArgList, Kernel, KernelDecl } from './kernel.ts';
import type { Nvrtc } from './nvrtc.ts';

/** The folder of the `.cu` kernel sources. */
export const kernelsDir = join(dirname(fileURLToPath(import.meta.url)), 'kernels');

/** Compile-time defines that pick a kernel variant (dtype, head size, ...). */
export type Defines = Readonly<Record<string, number | string>>;

/** Loads `.cu` files through NVRTC (cached on disk) for the device's arch; one module per (file, defines). */
export class KernelModules {
  private readonly modules = new Map<string, Handle>();
  private readonly functions = new Map<string, Kernel>();
  private readonly headers: string;
  readonly arch: string;

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
    const defs = Object.entries(defines)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `-D${k}=${v}`);
    const key = `${file}|${fn}|${defs.join(' ')}`;
    const cached = this.functions.get(key);
    if (cached) return cached as Kernel<A>;
    const modKey = `${file}|${defs.join(' ')}`;
    let mod = this.modules.get(modKey);
    if (!mod) {
      const source = readFileSync(join(kernelsDir, `${file}.cu`), 'utf8');
      const cubin = this.nvrtc.cubin(
        file,
        source,
        `${source}\n${this.headers}`,
        [`-I${kernelsDir}`, ...defs],
        this.arch,
        this.cacheDir,
      );
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
}
