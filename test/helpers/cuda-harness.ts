/**
 * The least CUDA needed to run the attention kernels from tests and bench/kernels.ts: driver + NVRTC through
 * koffi, one context, one stream. Method names follow the CUDA backend's driver so either can serve.
 * `openCudaHarness()` returns a skip message instead when no GPU or CUDA library is present.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import type { AttentionKernel, AttentionRuntime, DevPtr } from '../../src/backend/cuda/flash-attention.ts';
import { projectRoot } from './fixtures.ts';

const kernelsDir = join(projectRoot, 'src/backend/cuda/kernels');

function bind() {
  const cu = koffi.load('libcuda.so.1');
  let nvrtcLib: LibraryHandle | undefined;
  for (const n of ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so']) {
    try {
      nvrtcLib = koffi.load(n);
      break;
    } catch {}
  }
  if (!nvrtcLib) throw new Error('libnvrtc not found');
  const f = (lib: LibraryHandle, s: string) => lib.func(s);
  return {
    cuInit: f(cu, 'int cuInit(unsigned int)'),
    cuDeviceGet: f(cu, 'int cuDeviceGet(_Out_ int *d, int o)'),
    cuDeviceGetName: f(cu, 'int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)'),
    cuDeviceGetAttribute: f(cu, 'int cuDeviceGetAttribute(_Out_ int *v, int attr, int dev)'),
    cuCtxRetain: f(cu, 'int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int dev)'),
    cuCtxSetCurrent: f(cu, 'int cuCtxSetCurrent(void *ctx)'),
    cuMemAlloc: f(cu, 'int cuMemAlloc_v2(_Out_ uint64_t *p, size_t n)'),
    cuMemFree: f(cu, 'int cuMemFree_v2(uint64_t p)'),
    cuMemcpyHtoD: f(cu, 'int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t n)'),
    cuMemcpyDtoH: f(cu, 'int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t n)'),
    cuMemsetD32: f(cu, 'int cuMemsetD32Async(uint64_t dst, unsigned int v, size_t n, void *stream)'),
    cuModuleLoadData: f(cu, 'int cuModuleLoadData(_Out_ void **m, const void *img)'),
    cuModuleGetFunction: f(cu, 'int cuModuleGetFunction(_Out_ void **fn, void *m, const char *name)'),
    cuFuncSetAttribute: f(cu, 'int cuFuncSetAttribute(void *fn, int attr, int value)'),
    cuLaunchKernel: f(
      cu,
      'int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, uint64_t params, void *extra)',
    ),
    cuCtxSynchronize: f(cu, 'int cuCtxSynchronize()'),
    cuEventCreate: f(cu, 'int cuEventCreate(_Out_ void **e, unsigned int flags)'),
    cuEventRecord: f(cu, 'int cuEventRecord(void *e, void *s)'),
    cuEventSynchronize: f(cu, 'int cuEventSynchronize(void *e)'),
    cuEventElapsedTime: f(cu, 'int cuEventElapsedTime(_Out_ float *ms, void *a, void *b)'),
    nvrtcCreateProgram: f(
      nvrtcLib,
      'int nvrtcCreateProgram(_Out_ void **p, const char *src, const char *name, int nh, void *h, void *hn)',
    ),
    nvrtcCompileProgram: f(nvrtcLib, 'int nvrtcCompileProgram(void *p, int n, const char **opts)'),
    nvrtcGetProgramLogSize: f(nvrtcLib, 'int nvrtcGetProgramLogSize(void *p, _Out_ size_t *n)'),
    nvrtcGetProgramLog: f(nvrtcLib, 'int nvrtcGetProgramLog(void *p, _Out_ uint8_t *buf)'),
    nvrtcGetCUBINSize: f(nvrtcLib, 'int nvrtcGetCUBINSize(void *p, _Out_ size_t *n)'),
    nvrtcGetCUBIN: f(nvrtcLib, 'int nvrtcGetCUBIN(void *p, _Out_ uint8_t *buf)'),
  };
}

export class CudaHarness implements AttentionRuntime {
  readonly name: string;
  readonly smCount: number;
  readonly arch: string;
  private readonly api: ReturnType<typeof bind>;
  private readonly modules = new Map<string, unknown>();
  private readonly kernels = new Map<string, AttentionKernel>();
  private readonly paramValues: DataView;
  private readonly paramsAddr: bigint;

  constructor() {
    const a = bind();
    this.api = a;
    this.check(a.cuInit(0), 'cuInit');
    const dev = [0];
    this.check(a.cuDeviceGet(dev, 0), 'cuDeviceGet');
    const nameBuf = new Uint8Array(128);
    this.check(a.cuDeviceGetName(nameBuf, 128, dev[0]), 'cuDeviceGetName');
    this.name = Buffer.from(nameBuf).toString().replace(/\0.*$/s, '');
    const attr = (k: number) => {
      const v = [0];
      this.check(a.cuDeviceGetAttribute(v, k, dev[0]), 'cuDeviceGetAttribute');
      return v[0]!;
    };
    this.smCount = attr(16);
    this.arch = `sm_${attr(75)}${attr(76)}`;
    const ctx = [null];
    this.check(a.cuCtxRetain(ctx, dev[0]), 'cuDevicePrimaryCtxRetain');
    this.check(a.cuCtxSetCurrent(ctx[0]), 'cuCtxSetCurrent');
    const block = koffi.alloc('uint64_t', 128);
    const base = BigInt(koffi.address(block));
    this.paramValues = new DataView(koffi.view(block, 1024));
    const ptrs = new BigUint64Array(koffi.view(block, 1024), 512, 64);
    for (let i = 0; i < 64; i++) ptrs[i] = base + BigInt(8 * i);
    this.paramsAddr = base + 512n;
  }

  check(rc: number, what: string): void {
    if (rc !== 0) throw new Error(`${what} failed: CUDA error ${rc}`);
  }

  alloc(bytes: number): DevPtr {
    const p = [0n];
    this.check(this.api.cuMemAlloc(p, Math.max(256, bytes)), `cuMemAlloc(${bytes})`);
    return BigInt(p[0]!);
  }

  free(p: DevPtr): void {
    this.check(this.api.cuMemFree(p), 'cuMemFree');
  }

  upload(dst: DevPtr, src: ArrayBufferView): void {
    this.check(this.api.cuMemcpyHtoD(dst, src, src.byteLength), 'cuMemcpyHtoD');
  }

  download(dst: ArrayBufferView, src: DevPtr): void {
    this.check(this.api.cuMemcpyDtoH(dst, src, dst.byteLength), 'cuMemcpyDtoH');
  }

  fill32(dst: DevPtr, value: number, count: number): void {
    this.check(this.api.cuMemsetD32(dst, value >>> 0, count, null), 'cuMemsetD32Async');
  }

  sync(): void {
    this.check(this.api.cuCtxSynchronize(), 'cuCtxSynchronize');
  }

  /** Milliseconds `body` takes on the GPU, between two events. */
  time(body: () => void): number {
    const e0 = [null];
    const e1 = [null];
    this.check(this.api.cuEventCreate(e0, 0), 'cuEventCreate');
    this.check(this.api.cuEventCreate(e1, 0), 'cuEventCreate');
    this.check(this.api.cuEventRecord(e0[0], null), 'cuEventRecord');
    body();
    this.check(this.api.cuEventRecord(e1[0], null), 'cuEventRecord');
    this.check(this.api.cuEventSynchronize(e1[0]), 'cuEventSynchronize');
    const ms = [0];
    this.check(this.api.cuEventElapsedTime(ms, e0[0], e1[0]), 'cuEventElapsedTime');
    return ms[0]!;
  }

  private module(file: string): unknown {
    const cached = this.modules.get(file);
    if (cached) return cached;
    const a = this.api;
    const source = readFileSync(join(kernelsDir, `${file}.cu`), 'utf8');
    const prog = [null];
    this.check(a.nvrtcCreateProgram(prog, source, `${file}.cu`, 0, null, null), 'nvrtcCreateProgram');
    const opts = ['-std=c++17', `--gpu-architecture=${this.arch}`, `-I${kernelsDir}`];
    const rc = a.nvrtcCompileProgram(prog[0], opts.length, opts);
    if (rc !== 0) {
      const n = [0];
      a.nvrtcGetProgramLogSize(prog[0], n);
      const log = new Uint8Array(Number(n[0]));
      a.nvrtcGetProgramLog(prog[0], log);
      throw new Error(`NVRTC could not compile ${file}.cu:\n${Buffer.from(log).toString()}`);
    }
    const size = [0];
    this.check(a.nvrtcGetCUBINSize(prog[0], size), 'nvrtcGetCUBINSize');
    const cubin = new Uint8Array(Number(size[0]));
    this.check(a.nvrtcGetCUBIN(prog[0], cubin), 'nvrtcGetCUBIN');
    const mod = [null];
    this.check(a.cuModuleLoadData(mod, cubin), `cuModuleLoadData(${file})`);
    this.modules.set(file, mod[0]);
    return mod[0];
  }

  kernel(file: string, fn: string, kinds: string, dynamicSmem: number): AttentionKernel {
    const key = `${file}.${fn}`;
    const cached = this.kernels.get(key);
    if (cached) return cached;
    const handle = [null];
    this.check(this.api.cuModuleGetFunction(handle, this.module(file), fn), `cuModuleGetFunction(${fn})`);
    if (dynamicSmem > 48 * 1024)
      this.check(this.api.cuFuncSetAttribute(handle[0], 8, dynamicSmem), 'cuFuncSetAttribute');
    const kernel: AttentionKernel = {
      launch: (grid, block, args, smem) => {
        if (args.length !== kinds.length) throw new Error(`${fn}: ${args.length} arguments for "${kinds}"`);
        args.forEach((v, i) => {
          const k = kinds[i];
          if (k === 'i') this.paramValues.setInt32(8 * i, Number(v), true);
          else if (k === 'f') this.paramValues.setFloat32(8 * i, Number(v), true);
          else this.paramValues.setBigUint64(8 * i, BigInt(v), true);
        });
        const [gx, gy = 1, gz = 1] = grid;
        const [bx, by = 1, bz = 1] = block;
        this.check(
          this.api.cuLaunchKernel(handle[0], gx, gy, gz, bx, by, bz, smem, null, this.paramsAddr, null),
          `launch ${fn}`,
        );
      },
    };
    this.kernels.set(key, kernel);
    return kernel;
  }
}

/** A harness on GPU 0, or why there is none (for `test(..., { skip })`). */
export function openCudaHarness(): { harness: CudaHarness; skip: false } | { harness: null; skip: string } {
  try {
    return { harness: new CudaHarness(), skip: false };
  } catch (err) {
    return { harness: null, skip: `no usable CUDA GPU: ${(err as Error).message.split('\n')[0]}` };
  }
}
