import { UserError } from '../../util/errors.ts';
import type { DType } from '../backend.ts';
import { CudaDriver, MIN_DRIVER_VERSION } from './driver.ts';
import { CudaUnavailable } from './libs.ts';
import { Nvrtc } from './nvrtc.ts';
import { type CudaSettings, cudaSettings } from './settings.ts';

export type DeviceFlag = 'auto' | 'cuda' | 'cpu';

export const DEVICE_FLAGS: readonly DeviceFlag[] = ['auto', 'cuda', 'cpu'];

/**
 * Checks one by one what CUDA needs (on the device and with the libraries `opts.cuda` names); the first failure is
 * returned as a CudaUnavailable (reason + fix).
 */
export function probeCuda(
  opts: { weightBytes?: number; scratchBytes?: number; cuda?: Partial<CudaSettings> } = {},
): { ok: true; driver: CudaDriver } | CudaUnavailable {
  try {
    const settings = cudaSettings(opts.cuda);
    const drv = CudaDriver.open(settings);
    const { driverVersion, ccMajor, ccMinor, name } = drv.info;
    if (driverVersion < MIN_DRIVER_VERSION) {
      const v = (n: number) => `${Math.floor(n / 1000)}.${(n % 1000) / 10}`;
      return new CudaUnavailable(
        `the NVIDIA driver supports CUDA ${v(driverVersion)}, pagoda needs CUDA ${v(MIN_DRIVER_VERSION)} or newer`,
        'Update the NVIDIA driver (525 or newer), or use --device cpu',
      );
    }
    if (ccMajor < 8) {
      return new CudaUnavailable(
        `${name} has compute capability ${ccMajor}.${ccMinor}; pagoda's kernels need 8.0 or newer (Ampere, Ada, Hopper)`,
        'Use a newer GPU, or --device cpu',
      );
    }
    Nvrtc.open(settings.cudaRoots);
    if (opts.weightBytes !== undefined) {
      const { free } = drv.memInfo();
      const scratch = opts.scratchBytes ?? 0;
      const need = opts.weightBytes + scratch + (1 << 30);
      if (free < need) {
        const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
        const beside = scratch ? `, their expert scratch ${gib(scratch)}` : '';
        return new CudaUnavailable(
          `${name} has ${gib(free)} free, the weights need ${gib(opts.weightBytes)}${beside} plus 1 GiB for activations and KV cache`,
          'Free GPU memory (see nvidia-smi), pick a smaller model, or use --device cpu',
        );
      }
    }
    return { ok: true, driver: drv };
  } catch (err) {
    if (err instanceof CudaUnavailable) return err;
    return new CudaUnavailable(
      `CUDA could not start: ${(err as Error).message}`,
      'Check nvidia-smi, or use --device cpu',
    );
  }
}

/**
 * Resolves `--device`: 'cuda' fails with the exact cause when CUDA is unusable; 'auto' falls back to the CPU and
 * says why through `note`.
 */
export function selectDevice(
  flag: string,
  opts: { weightBytes?: number; cuda?: Partial<CudaSettings>; note?: (line: string) => void } = {},
): 'cpu' | 'cuda' {
  if (!DEVICE_FLAGS.includes(flag as DeviceFlag)) {
    throw new UserError(`--device ${flag}: expected one of ${DEVICE_FLAGS.join(', ')}`);
  }
  if (flag === 'cpu') return 'cpu';
  const probe = probeCuda(opts);
  if (!(probe instanceof CudaUnavailable)) return 'cuda';
  if (flag === 'cuda') throw new UserError(`--device cuda: ${probe.reason}. ${probe.fix}`);
  // The short form: on a machine without a GPU this is the normal case, not an error.
  opts.note?.(`device: cpu (CUDA not used: ${probe.reason.split(': tried')[0]})`);
  return 'cpu';
}

export const DTYPE_FLAGS = ['auto', 'bfloat16', 'float16', 'float32'] as const;

/**
 * The CUDA backend's storage type for a model stored as `stored` (config.json's dtype): `--dtype auto` keeps bf16 and
 * fp16 as stored and turns fp32 into bf16; an explicit --dtype wins.
 */
export function cudaDtype(stored: string, flag = 'auto'): DType {
  if (!(DTYPE_FLAGS as readonly string[]).includes(flag)) {
    throw new UserError(`--dtype ${flag}: expected one of ${DTYPE_FLAGS.join(', ')}`);
  }
  if (flag === 'float32') return 'f32';
  if (flag === 'float16') return 'f16';
  if (flag === 'bfloat16') return 'bf16';
  return stored === 'float16' ? 'f16' : 'bf16';
}
