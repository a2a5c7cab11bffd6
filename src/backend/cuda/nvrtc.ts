import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LibraryHandle } from 'koffi';
import { kernelCacheKey, kernelCachePath, readCachedKernel, writeCachedKernel } from './kernel-cache.ts';
import { cudaLibraryDirs, loadCudaLibrary } from './libs.ts';

function bindNvrtc(lib: LibraryHandle) {
  const f = (s: string) => lib.func(s);
  return {
    nvrtcVersion: f('int nvrtcVersion(_Out_ int *major, _Out_ int *minor)'),
    nvrtcCreateProgram: f(
      'int nvrtcCreateProgram(_Out_ void **prog, const char *src, const char *name, int numHeaders, void *headers, void *includeNames)',
    ),
    nvrtcDestroyProgram: f('int nvrtcDestroyProgram(_Inout_ void **prog)'),
    nvrtcCompileProgram: f('int nvrtcCompileProgram(void *prog, int numOptions, const char **options)'),
    nvrtcGetProgramLogSize: f('int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *n)'),
    nvrtcGetProgramLog: f('int nvrtcGetProgramLog(void *prog, _Out_ uint8_t *log)'),
    nvrtcGetCUBINSize: f('int nvrtcGetCUBINSize(void *prog, _Out_ size_t *n)'),
    nvrtcGetCUBIN: f('int nvrtcGetCUBIN(void *prog, _Out_ uint8_t *cubin)'),
  };
}

/** Include folders for the CUDA headers NVRTC needs (cuda_bf16.h, cuda_fp16.h). */
function cudaIncludeDirs(roots: readonly string[]): string[] {
  const dirs = cudaLibraryDirs(roots).map((d) => join(d, '..', 'include'));
  return [...new Set(dirs)].filter((d) => existsSync(join(d, 'cuda_bf16.h')));
}

/** Compiles one kernel source to a cubin (NVRTC, or a fake in tests); `version` enters the cache key. */
export interface KernelCompiler {
  readonly version: string;
  /** The cubin of `source`; `options` include `--gpu-architecture`. Throws with the compiler's log. */
  compile(name: string, source: string, options: readonly string[]): Uint8Array;
}

/** The key a kernel is cached under for `compiler` (NVRTC's version named). */
export function compilerKey(compiler: Pick<KernelCompiler, 'version'>): string {
  return `nvrtc ${compiler.version}`;
}

/** Whether a compiler version ("major.minor") is at least major.minor (an unparsable one: no). */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split('.').map(Number);
  return a! > major || (a === major && b! >= minor);
}

/** NVRTC (libnvrtc.so.13, else .12) with an on-disk cubin cache. */
export class Nvrtc implements KernelCompiler {
  private readonly api: ReturnType<typeof bindNvrtc>;
  readonly version: string;
  private readonly includes: string[];
  /** Compiles and cache hits in this process (for the start-up report and tests). */
  readonly stats = { compiled: 0, cached: 0, compileMs: 0 };

  private constructor(lib: LibraryHandle, roots: readonly string[]) {
    this.api = bindNvrtc(lib);
    const major = [0];
    const minor = [0];
    this.api.nvrtcVersion(major, minor);
    this.version = `${major[0]}.${minor[0]}`;
    this.includes = cudaIncludeDirs(roots).map((d) => `-I${d}`);
  }

  private static instance: Nvrtc | undefined;

  /** Loads NVRTC once per process, looking in the toolkit `roots` (CudaSettings.cudaRoots) among other places. */
  static open(roots: readonly string[]): Nvrtc {
    Nvrtc.instance ??= new Nvrtc(
      loadCudaLibrary(
        ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so'],
        'the CUDA runtime compiler libnvrtc',
        'Install the CUDA toolkit 12 or 13 (or the nvidia-cuda-nvrtc package) and put its lib64 folder on LD_LIBRARY_PATH',
        roots,
      ),
      roots,
    );
    return Nvrtc.instance;
  }

  /**
   * Returns the cubin of `source` for `arch` (e.g. "sm_90"): from the cache folder `dir` when the key matches, else
   * compiled and stored there. `hashSource` is what the key covers (the source plus every header it includes).
   */
  cubin(
    name: string,
    source: string,
    hashSource: string,
    options: readonly string[],
    arch: string,
    dir: string,
  ): Uint8Array {
    const path = kernelCachePath(dir, name, kernelCacheKey(hashSource, options, arch, compilerKey(this)));
    const cached = readCachedKernel(path);
    if (cached) {
      this.stats.cached++;
      return cached;
    }
    const t0 = performance.now();
    const cubin = this.compile(name, source, [...options, `--gpu-architecture=${arch}`]);
    this.stats.compiled++;
    this.stats.compileMs += performance.now() - t0;
    writeCachedKernel(path, cubin);
    return cubin;
  }

  compile(name: string, source: string, options: readonly string[]): Uint8Array {
    const a = this.api;
    const prog = [null];
    let rc = a.nvrtcCreateProgram(prog, source, name, 0, null, null);
    if (rc !== 0) throw new Error(`nvrtcCreateProgram(${name}) failed: ${rc}`);
    try {
      const opts = ['-std=c++17', ...this.includes, ...options];
      rc = a.nvrtcCompileProgram(prog[0], opts.length, opts);
      if (rc !== 0) {
        const n = [0];
        a.nvrtcGetProgramLogSize(prog[0], n);
        const log = new Uint8Array(Number(n[0]));
        a.nvrtcGetProgramLog(prog[0], log);
        throw new Error(`NVRTC could not compile ${name} (${opts.join(' ')}):\n${Buffer.from(log).toString('utf8')}`);
      }
      const size = [0];
      a.nvrtcGetCUBINSize(prog[0], size);
      const cubin = new Uint8Array(Number(size[0]));
      rc = a.nvrtcGetCUBIN(prog[0], cubin);
      if (rc !== 0) throw new Error(`nvrtcGetCUBIN(${name}) failed: ${rc}`);
      return cubin;
    } finally {
      a.nvrtcDestroyProgram(prog);
    }
  }
}
