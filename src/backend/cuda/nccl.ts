import type { LibraryHandle } from 'koffi';
import type { DType } from '../backend.ts';
import type { DevPtr, Handle } from './driver.ts';
import { loadCudaLibrary } from './libs.ts';

/** NCCL's entry points; communicators go as 64-bit addresses, device buffers as uint64_t as the driver's do. */
function bindNccl(lib: LibraryHandle) {
  const f = (s: string) => lib.func(s);
  return {
    getVersion: f('int ncclGetVersion(_Out_ int *version)'),
    errorString: f('const char *ncclGetErrorString(int result)'),
    lastError: f('const char *ncclGetLastError(uint64_t comm)'),
    commInitAll: f('int ncclCommInitAll(uint64_t *comms, int ndev, const int *devlist)'),
    commDestroy: f('int ncclCommDestroy(uint64_t comm)'),
    groupStart: f('int ncclGroupStart()'),
    groupEnd: f('int ncclGroupEnd()'),
    allReduce: f(
      'int ncclAllReduce(uint64_t send, uint64_t recv, size_t count, int type, int op, uint64_t comm, void *stream)',
    ),
    allGather: f(
      'int ncclAllGather(uint64_t send, uint64_t recv, size_t sendCount, int type, uint64_t comm, void *stream)',
    ),
  };
}

/** ncclDataType_t of each storage type. */
const NCCL_TYPE: Record<DType, number> = { f16: 6, f32: 7, bf16: 9 };
/** ncclRedOp_t ncclSum. */
const SUM = 0;

/** An NCCL call that failed, with NCCL's name for the result and its last error message. */
export class NcclError extends Error {
  override readonly name = 'NcclError';
}

/** NCCL_VERSION_CODE (major·10000 + minor·100 + patch, NCCL 2.9 on) as "2.27.3". */
export function ncclVersionName(code: number): string {
  return `${Math.floor(code / 10000)}.${Math.floor(code / 100) % 100}.${code % 100}`;
}

/**
 * The NCCL library (libnccl.so.2) through koffi, loaded once per process and found as the other CUDA libraries are
 * (libs.ts: a CudaUnavailable naming every path tried when it is absent). Collectives are queued on a CUDA stream
 * like kernels, so a stream being captured records them into its graph.
 */
export class Nccl {
  private static opened: Nccl | undefined;
  readonly version: number;

  private constructor(private readonly api: ReturnType<typeof bindNccl>) {
    const v = [0];
    this.check(api.getVersion(v), 'ncclGetVersion');
    this.version = v[0]!;
  }

  /** `roots`: toolkit folders searched for the library (CudaSettings.cudaRoots). */
  static open(roots: readonly string[]): Nccl {
    Nccl.opened ??= new Nccl(
      bindNccl(
        loadCudaLibrary(
          ['libnccl.so.2', 'libnccl.so'],
          'the NCCL library libnccl.so.2',
          'Install NCCL (the libnccl2 package, or the nvidia-nccl-cu12/cu13 wheel) and put its folder on LD_LIBRARY_PATH',
          roots,
        ),
      ),
    );
    return Nccl.opened;
  }

  private check(rc: number, what: string, comm = 0n): void {
    if (rc === 0) return;
    const last = this.api.lastError(comm) as string | null;
    throw new NcclError(`${what} failed: ${this.api.errorString(rc)}${last ? ` (${last})` : ''}`);
  }

  /** One communicator per device of `devices` (CUDA ordinals), rank r on devices[r], all driven by this process. */
  initAll(devices: readonly number[]): bigint[] {
    const comms = new BigUint64Array(devices.length);
    this.check(this.api.commInitAll(comms, devices.length, Int32Array.from(devices)), 'ncclCommInitAll');
    return [...comms];
  }

  destroy(comm: bigint): void {
    this.check(this.api.commDestroy(comm), 'ncclCommDestroy', comm);
  }

  /**
   * Runs `body`'s collectives as one NCCL group: one thread issuing every rank's call needs it, or the first call
   * would wait for ranks whose calls were not issued yet. If `body` throws, its error is the one reported.
   */
  group(body: () => void): void {
    this.check(this.api.groupStart(), 'ncclGroupStart');
    let failed = true;
    try {
      body();
      failed = false;
    } finally {
      const rc = this.api.groupEnd();
      if (!failed) this.check(rc, 'ncclGroupEnd');
    }
  }

  /** recv = the sum over the ranks of their `count` elements of send, on `stream` (in place when recv is send). */
  allReduce(send: DevPtr, recv: DevPtr, count: number, dtype: DType, comm: bigint, stream: Handle): void {
    this.check(this.api.allReduce(send, recv, count, NCCL_TYPE[dtype], SUM, comm, stream), 'ncclAllReduce', comm);
  }

  /** recv = every rank's `count` elements of send, one after another in rank order, on `stream`. */
  allGather(send: DevPtr, recv: DevPtr, count: number, dtype: DType, comm: bigint, stream: Handle): void {
    this.check(this.api.allGather(send, recv, count, NCCL_TYPE[dtype], comm, stream), 'ncclAllGather', comm);
  }
}
