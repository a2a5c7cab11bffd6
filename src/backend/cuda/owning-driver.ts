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
  const modules = new Set<Handle>();
  const events = new Set<Handle>();
  let released = false;
  /** Records what `make` returns (or its `key`) in `held`; refused once the backend was released. */
  const acquire = <H>(held: Set<unknown>, make: () => H, key: (h: H) => unknown = (h) => h): H => {
    if (released) throw new Error('this CUDA backend was released (its model unloaded)');
    const h = make();
    held.add(key(h));
    return h;
  };
  /** Frees `h` if this view holds it; anything else is a double free while the backend lives, and nothing after. */
  const give = <H>(held: Set<H>, h: H, free: (h: H) => void, what: string): void => {
    if (held.delete(h)) free(h);
    else if (!released) throw new Error(`${what}: not allocated by this backend, or freed twice`);
  };
  const view = Object.create(drv) as OwningDriver;
  view.alloc = (bytes) => acquire(device, () => drv.alloc(bytes));
  view.free = (p) => give(device, p, (x) => drv.free(x), `cuMemFree of ${p}`);
  view.allocHost = (bytes) =>
    acquire(
      host,
      () => drv.allocHost(bytes),
      (pinned) => pinned.handle,
    );
  view.freeHost = (handle) => give(host, handle, (h) => drv.freeHost(h), 'cuMemFreeHost');
  view.loadModule = (image) => acquire(modules, () => drv.loadModule(image));
  view.createEvent = (flags) => acquire(events, () => drv.createEvent(flags));
  view.destroyEvent = (e) => give(events, e, (x) => drv.destroyEvent(x), 'cuEventDestroy');
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
    modules.clear();
  };
  return view;
}
