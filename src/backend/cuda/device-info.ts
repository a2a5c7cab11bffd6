import { ATTR, type bindDriver } from './driver-api.ts';
import { CudaUnavailable } from './libs.ts';

export interface DeviceInfo {
  index: number;
  /** Devices the driver sees (CUDA_VISIBLE_DEVICES applied). */
  deviceCount: number;
  name: string;
  ccMajor: number;
  ccMinor: number;
  smCount: number;
  totalBytes: number;
  driverVersion: number;
  maxSharedPerBlockOptin: number;
}

/**
 * Device `index` as the initialized driver describes it, and its handle; CudaUnavailable when the driver sees no such
 * device. `check` throws for a failed call.
 */
export function queryDevice(
  api: ReturnType<typeof bindDriver>,
  index: number,
  check: (rc: number, what: string) => void,
): { device: number; info: DeviceInfo } {
  const version = [0];
  check(api.cuDriverGetVersion(version), 'cuDriverGetVersion');
  const count = [0];
  check(api.cuDeviceGetCount(count), 'cuDeviceGetCount');
  if (count[0]! <= index) {
    throw new CudaUnavailable(
      `no CUDA device ${index}: the driver sees ${count[0]} device(s)`,
      'Check CUDA_VISIBLE_DEVICES and nvidia-smi, or use --device cpu',
    );
  }
  const dev = [0];
  check(api.cuDeviceGet(dev, index), 'cuDeviceGet');
  const nameBuf = new Uint8Array(256);
  check(api.cuDeviceGetName(nameBuf, nameBuf.length, dev[0]), 'cuDeviceGetName');
  const attr = (k: number) => {
    const v = [0];
    check(api.cuDeviceGetAttribute(v, k, dev[0]), `cuDeviceGetAttribute(${k})`);
    return v[0]!;
  };
  const total = [0];
  check(api.cuDeviceTotalMem(total, dev[0]), 'cuDeviceTotalMem');
  const info = {
    index,
    deviceCount: count[0]!,
    name: Buffer.from(nameBuf).toString('utf8').replace(/\0.*$/s, ''),
    ccMajor: attr(ATTR.ccMajor),
    ccMinor: attr(ATTR.ccMinor),
    smCount: attr(ATTR.multiprocessorCount),
    totalBytes: Number(total[0]),
    driverVersion: version[0]!,
    maxSharedPerBlockOptin: attr(ATTR.maxSharedPerBlockOptin),
  };
  return { device: dev[0]!, info };
}
