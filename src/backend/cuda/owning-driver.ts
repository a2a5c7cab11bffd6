import type { CudaDriver, DevPtr, Handle } from './driver.ts';

/** The driver as one backend sees it: its allocations, kernel modules and events recorded, for `releaseAll`. */
export type OwningDriver = CudaDriver & {
  /**
   * Waits for the stream, then frees every device and pinned allocation made through this view and not yet freed,
   * unloads its kernel modules and destroys its events. The view refuses to allocate afterwards.
   */
  releaseAll(): void;
};

/**
 * The process's one driver seen by one backend: alloc and free (device and pinned host), module loads and events go
 * through this view and are recorded, so that `releaseAll` frees whatever the backend still holds when its model
 * unloads. A free of memory the view does not hold is an error while the backend lives (a double free), and does
 * nothing after `releaseAll` (that address may belong to another backend by then). Everything else is the driver's
 * own: the view's prototype is the driver, whose fields are set once, in its constructor.
 */
export function owningDriver(drv: CudaDriver): OwningDriver {
  const device = new Set<DevPtr>();
  const host = new Set<Handle>();
  const modules: Handle[] = [];
  const events = new Set<Handle>();
  let released = false;
  const live = () => {
    if (released) throw new Error('this CUDA backend was released (its model unloaded)');
  };
  const view = Object.create(drv) as OwningDriver;
  view.alloc = (bytes) => {
    live();
    const p = drv.alloc(bytes);
    device.add(p);
    return p;
  };
  view.free = (p) => {
    if (device.delete(p)) drv.free(p);
    else if (!released) throw new Error(`cuMemFree of ${p}: not allocated by this backend, or freed twice`);
  };
  view.allocHost = (bytes) => {
    live();
    const h = drv.allocHost(bytes);
    host.add(h.handle);
    return h;
  };
  view.freeHost = (handle) => {
    if (host.delete(handle)) drv.freeHost(handle);
    else if (!released) throw new Error('cuMemFreeHost: memory not allocated by this backend, or freed twice');
  };
  view.loadModule = (image) => {
    live();
    const m = drv.loadModule(image);
    modules.push(m);
    return m;
  };
  view.createEvent = (flags) => {
    live();
    const e = drv.createEvent(flags);
    events.add(e);
    return e;
  };
  view.destroyEvent = (e) => {
    if (events.delete(e)) drv.destroyEvent(e);
  };
  view.releaseAll = () => {
    if (released) return;
    released = true;
    drv.sync();
    for (const p of device) drv.free(p);
    for (const h of host) drv.freeHost(h);
    for (const m of modules) drv.check(drv.api.cuModuleUnload(m), 'cuModuleUnload');
    for (const e of events) drv.destroyEvent(e);
    device.clear();
    events.clear();
    host.clear();
    modules.length = 0;
  };
  return view;
}
