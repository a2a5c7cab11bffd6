import type { CudaDriver, DevPtr, Handle } from './driver.ts';

/** The driver as one backend sees it: its allocations recorded, for `releaseAll`. */
export type OwningDriver = CudaDriver & {
  /** Waits for the stream, then frees every device and pinned allocation made through this view and not yet freed. */
  releaseAll(): void;
};

/**
 * The process's one driver seen by one backend: alloc and free (device and pinned host) go through this view and
 * are recorded, so that `releaseAll` frees whatever the backend still holds when its model unloads. Everything else
 * is the driver's own: the view's prototype is the driver, whose fields are set once, in its constructor.
 */
export function owningDriver(drv: CudaDriver): OwningDriver {
  const device = new Set<DevPtr>();
  const host = new Set<Handle>();
  const view = Object.create(drv) as OwningDriver;
  view.alloc = (bytes) => {
    const p = drv.alloc(bytes);
    device.add(p);
    return p;
  };
  view.free = (p) => {
    device.delete(p);
    drv.free(p);
  };
  view.allocHost = (bytes) => {
    const h = drv.allocHost(bytes);
    host.add(h.handle);
    return h;
  };
  view.freeHost = (handle) => {
    host.delete(handle);
    drv.freeHost(handle);
  };
  view.releaseAll = () => {
    drv.sync();
    for (const p of device) drv.free(p);
    for (const h of host) drv.freeHost(h);
    device.clear();
    host.clear();
  };
  return view;
}
