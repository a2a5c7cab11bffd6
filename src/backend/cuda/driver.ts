import koffi, { type LibraryHandle } from 'koffi';
import { type DeviceInfo, queryDevice } from './device-info.ts';
import { bindDriver, bindLaunchEx } from './driver-api.ts';
import {
  LAUNCH_ATTRIBUTE,
  LAUNCH_CONFIG,
  writeLaunchShape,
  writeLaunchTarget,
  writeProgrammaticSerialization,
} from './launch-config.ts';
import { loadCudaLibrary } from './libs.ts';
import { type CudaSettings, DEFAULT_CUDA_SETTINGS } from './settings.ts';

/** A device address. */
export type DevPtr = bigint;
/** An opaque driver handle (context, stream, module, function, graph, event). */
export type Handle = unknown;

/** Oldest driver API accepted: CUDA 12.0 (NVRTC 12/13 cubins and the graph calls used here). */
export const MIN_DRIVER_VERSION = 12000;
/** Programmatic dependent launch needs sm_90 and, to be captured into graphs, a CUDA 12.3 driver. */
export const PDL_MIN_DRIVER_VERSION = 12030;

/** A CUDA error with the driver's name for the code (e.g. CUDA_ERROR_OUT_OF_MEMORY). */
export class CudaError extends Error {
  override readonly name = 'CudaError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The CUDA driver API through koffi (versioned `_v2` symbols), one device, one primary context and one stream.
 * Device pointers are BigInt; handles are koffi externals.
 */
export class CudaDriver {
  readonly api: ReturnType<typeof bindDriver>;
  readonly info: DeviceInfo;
  readonly stream: Handle;
  private readonly ctx: Handle;
  /** The device's handle (the primary context is retained on it, and released by `close`). */
  private readonly device: number;
  /** One stable parameter block for cuLaunchKernel: 64 value slots of 8 bytes, then 64 pointers to them. */
  private readonly paramBlock: unknown;
  private readonly paramValues: DataView;
  private readonly paramsAddr: bigint;
  private readonly launchEx: ReturnType<typeof bindLaunchEx>;
  /** A CUlaunchConfig followed by its one attribute (programmatic stream serialization), written once. */
  private readonly launchBlock: unknown;
  private readonly launchConfig: DataView;
  private readonly launchConfigAddr: bigint;
  /** Whether this device and driver can launch kernels that overlap their predecessor's tail (sm_90+, CUDA 12.3+). */
  readonly pdlAvailable: boolean;
  /**
   * Whether our kernels are launched with programmatic dependent launch (PDL): each may start while the previous
   * kernel finishes and waits in `PDL_WAIT()` (kernels/pdl.cuh) before touching anything an earlier kernel wrote.
   * On where available unless opened with `pdl: false` (PAGODA_PDL=0). Graphs captured before a change keep the
   * launches they were made with.
   */
  pdl: boolean;

  private constructor(lib: LibraryHandle, deviceIndex: number, pdl: boolean) {
    this.api = bindDriver(lib);
    const a = this.api;
    this.check(a.cuInit(0), 'cuInit');
    const { device, info } = queryDevice(a, deviceIndex, (rc, what) => this.check(rc, what));
    this.device = device;
    this.info = info;
    const ctx = [null];
    this.check(a.cuDevicePrimaryCtxRetain(ctx, this.device), 'cuDevicePrimaryCtxRetain');
    this.ctx = ctx[0];
    this.check(a.cuCtxSetCurrent(this.ctx), 'cuCtxSetCurrent');
    const s = [null];
    this.check(a.cuStreamCreate(s, 1), 'cuStreamCreate'); // CU_STREAM_NON_BLOCKING
    this.stream = s[0];
    this.paramBlock = koffi.alloc('uint64_t', 128);
    const base = koffi.address(this.paramBlock);
    this.paramValues = new DataView(koffi.view(this.paramBlock, 1024));
    const ptrs = new BigUint64Array(koffi.view(this.paramBlock, 1024), 512, 64);
    for (let i = 0; i < 64; i++) ptrs[i] = base + BigInt(8 * i);
    this.paramsAddr = base + 512n;
    this.launchEx = bindLaunchEx(lib);
    const cfgBytes = LAUNCH_CONFIG.bytes + LAUNCH_ATTRIBUTE.bytes;
    this.launchBlock = koffi.alloc('uint64_t', cfgBytes / 8);
    this.launchConfigAddr = koffi.address(this.launchBlock);
    this.launchConfig = new DataView(koffi.view(this.launchBlock, cfgBytes));
    writeLaunchTarget(
      this.launchConfig,
      koffi.address(this.stream),
      this.launchConfigAddr + BigInt(LAUNCH_CONFIG.bytes),
      1,
    );
    writeProgrammaticSerialization(this.launchConfig, LAUNCH_CONFIG.bytes);
    this.pdlAvailable =
      this.launchEx !== null && this.info.ccMajor >= 9 && this.info.driverVersion >= PDL_MIN_DRIVER_VERSION;
    this.pdl = this.pdlAvailable && pdl;
  }

  private static instance: CudaDriver | undefined;

  /**
   * Loads libcuda.so.1 and opens `settings.device`, once per process: later calls get the same driver (its `pdl` as
   * first opened) and may not ask for another device. Throws CudaUnavailable with the cause.
   */
  static open(settings: Pick<CudaSettings, 'device' | 'pdl' | 'cudaRoots'> = DEFAULT_CUDA_SETTINGS): CudaDriver {
    const opened = CudaDriver.instance;
    if (opened) {
      if (opened.info.index !== settings.device) {
        throw new Error(
          `CUDA device ${opened.info.index} is already open: one device per process, not ${settings.device}`,
        );
      }
      return opened;
    }
    const lib = loadCudaLibrary(
      ['libcuda.so.1', 'libcuda.so'],
      'the NVIDIA driver library libcuda.so.1',
      'Install the NVIDIA driver (nvidia-smi must work), or use --device cpu',
      settings.cudaRoots,
    );
    const drv = new CudaDriver(lib, settings.device, settings.pdl);
    CudaDriver.instance = drv;
    return drv;
  }

  /**
   * Ends this thread's driver, opened once per thread: a pooling runner thread about to exit destroys its stream and
   * lets go of the primary context (the main thread's driver lives as long as the process). Nothing may use it after.
   */
  static close(): void {
    const drv = CudaDriver.instance;
    if (!drv) return;
    CudaDriver.instance = undefined;
    const a = drv.api;
    drv.check(a.cuStreamSynchronize(drv.stream), 'cuStreamSynchronize');
    drv.check(a.cuStreamDestroy(drv.stream), 'cuStreamDestroy');
    drv.check(a.cuDevicePrimaryCtxRelease(drv.device), 'cuDevicePrimaryCtxRelease');
  }

  errorName(code: number): string {
    const out = [null as string | null];
    return this.api.cuGetErrorName(code, out) === 0 && out[0] ? out[0] : `CUDA error ${code}`;
  }

  check(rc: number, what: string): void {
    if (rc !== 0) throw new CudaError(rc, `${what} failed: ${this.errorName(rc)}`);
  }

  memInfo(): { free: number; total: number } {
    const free = [0];
    const total = [0];
    this.check(this.api.cuMemGetInfo(free, total), 'cuMemGetInfo');
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  alloc(bytes: number): DevPtr {
    const p = [0n];
    this.check(this.api.cuMemAlloc(p, Math.max(256, bytes)), `cuMemAlloc(${bytes} bytes)`);
    return BigInt(p[0]!);
  }

  free(p: DevPtr): void {
    this.check(this.api.cuMemFree(p), 'cuMemFree');
  }

  /** Page-locked host memory, seen from JS as an ArrayBuffer; `addr` is its host address. */
  allocHost(bytes: number): { buffer: ArrayBuffer; addr: bigint; handle: Handle } {
    const p = [null];
    this.check(this.api.cuMemAllocHost(p, bytes), `cuMemAllocHost(${bytes} bytes)`);
    return { buffer: koffi.view(p[0], bytes), addr: koffi.address(p[0]), handle: p[0] };
  }

  freeHost(handle: Handle): void {
    this.check(this.api.cuMemFreeHost(handle), 'cuMemFreeHost');
  }

  /** Host → device on the stream. `src` must stay untouched until the stream reaches the copy (pinned staging). */
  upload(dst: DevPtr, src: ArrayBufferView): void {
    this.check(this.api.cuMemcpyHtoDAsync(dst, src, src.byteLength, this.stream), 'cuMemcpyHtoDAsync');
  }

  /** Host → device from a pinned host address. */
  uploadFrom(dst: DevPtr, srcAddr: bigint, bytes: number): void {
    this.check(this.api.cuMemcpyHtoDAsyncAddr(dst, srcAddr, bytes, this.stream), 'cuMemcpyHtoDAsync');
  }

  /** Device → host, then waits for the stream. */
  download(dst: ArrayBufferView, src: DevPtr): void {
    this.check(this.api.cuMemcpyDtoHAsync(dst, src, dst.byteLength, this.stream), 'cuMemcpyDtoHAsync');
    this.sync();
  }

  /** Device → a pinned host address on the stream, without waiting: read it once an event recorded after it is done. */
  downloadTo(dstAddr: bigint, src: DevPtr, bytes: number): void {
    this.check(this.api.cuMemcpyDtoHAsyncAddr(dstAddr, src, bytes, this.stream), 'cuMemcpyDtoHAsync');
  }

  copy(dst: DevPtr, src: DevPtr, bytes: number): void {
    this.check(this.api.cuMemcpyDtoDAsync(dst, src, bytes, this.stream), 'cuMemcpyDtoDAsync');
  }

  /**
   * Copies `height` rows of `widthBytes` bytes, device to device on the stream: row i from src + i·srcPitch to
   * dst + i·dstPitch (a block of columns moved between matrices of different widths).
   */
  copy2d(dst: DevPtr, dstPitch: number, src: DevPtr, srcPitch: number, widthBytes: number, height: number): void {
    const DEVICE = 2n; // CU_MEMORYTYPE_DEVICE
    // CUDA_MEMCPY2D, as 64-bit words: for src then dst, x in bytes, y, memory type, host pointer, device pointer,
    // array and pitch; then the width in bytes and the height.
    const side = (ptr: DevPtr, pitch: number) => [0n, 0n, DEVICE, 0n, ptr, 0n, BigInt(pitch)];
    const words = BigUint64Array.from([
      ...side(src, srcPitch),
      ...side(dst, dstPitch),
      BigInt(widthBytes),
      BigInt(height),
    ]);
    this.check(this.api.cuMemcpy2DAsync(words, this.stream), 'cuMemcpy2DAsync');
  }

  fill32(dst: DevPtr, value: number, count: number): void {
    this.check(this.api.cuMemsetD32Async(dst, value >>> 0, count, this.stream), 'cuMemsetD32Async');
  }

  sync(): void {
    this.check(this.api.cuStreamSynchronize(this.stream), 'cuStreamSynchronize');
  }

  loadModule(image: Uint8Array): Handle {
    const m = [null];
    this.check(this.api.cuModuleLoadData(m, image), 'cuModuleLoadData');
    return m[0];
  }

  getFunction(module: Handle, name: string): Handle {
    const fn = [null];
    this.check(this.api.cuModuleGetFunction(fn, module, name), `cuModuleGetFunction(${name})`);
    return fn[0];
  }

  /** Registers per thread and local (spilled) bytes per thread ptxas gave `fn`. */
  funcResources(fn: Handle): { registers: number; localBytes: number } {
    const attr = (a: number, what: string) => {
      const v = [0];
      this.check(this.api.cuFuncGetAttribute(v, a, fn), `cuFuncGetAttribute(${what})`);
      return v[0]!;
    };
    return { registers: attr(4, 'NUM_REGS'), localBytes: attr(3, 'LOCAL_SIZE_BYTES') };
  }

  /** Lets `fn` use more than 48 KB of dynamic shared memory. */
  setMaxDynamicShared(fn: Handle, bytes: number): void {
    this.check(this.api.cuFuncSetAttribute(fn, 8, bytes), 'cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)');
  }

  /** Launches `fn` on the stream; `kinds` packs `args` one letter each (kernel.ts `KernelDecl.kinds`). */
  launch(
    fn: Handle,
    name: string,
    grid: readonly [number, number?, number?],
    block: readonly [number, number?, number?],
    smem: number,
    kinds: string,
    args: readonly (number | bigint)[],
  ): void {
    if (args.length !== kinds.length) throw new Error(`kernel ${name}: ${args.length} arguments for "${kinds}"`);
    const v = this.paramValues;
    for (let i = 0; i < args.length; i++) {
      const k = kinds.charCodeAt(i);
      const a = args[i]!;
      if (k === 105 /* i */) v.setInt32(8 * i, Number(a), true);
      else if (k === 102 /* f */) v.setFloat32(8 * i, Number(a), true);
      else v.setBigUint64(8 * i, BigInt(a), true);
    }
    if (this.pdl) {
      writeLaunchShape(this.launchConfig, grid, block, smem);
      const rc = this.launchEx!(this.launchConfigAddr, fn, this.paramsAddr, null);
      if (rc !== 0) this.check(rc, `launch ${name} grid [${grid}] block [${block}] (cuLaunchKernelEx, PDL)`);
      return;
    }
    const rc = this.api.cuLaunchKernel(
      fn,
      grid[0],
      grid[1] ?? 1,
      grid[2] ?? 1,
      block[0],
      block[1] ?? 1,
      block[2] ?? 1,
      smem,
      this.stream,
      this.paramsAddr,
      null,
    );
    if (rc !== 0) this.check(rc, `launch ${name} grid [${grid}] block [${block}]`);
  }

  /** A CUDA event (cuEventCreate flags); destroy it with destroyEvent. */
  createEvent(flags: number): Handle {
    const e = [null];
    this.check(this.api.cuEventCreate(e, flags), 'cuEventCreate');
    return e[0];
  }

  destroyEvent(e: Handle): void {
    this.check(this.api.cuEventDestroy(e), 'cuEventDestroy');
  }
}
