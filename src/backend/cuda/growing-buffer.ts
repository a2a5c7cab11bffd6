import type { CudaDriver, DevPtr } from './driver.ts';

/**
 * A device buffer that only grows, to exactly what is asked: replacing it drains the stream first, since queued
 * work may still read the old one (and graphs captured over it are stale: `grow` says when it moved).
 */
export class GrowingBuffer {
  ptr: DevPtr = 0n;
  bytes = 0;

  constructor(private readonly drv: CudaDriver) {}

  /** Holds at least `bytes`; true when the buffer was replaced. */
  grow(bytes: number): boolean {
    if (bytes <= this.bytes) return false;
    this.release();
    this.ptr = this.drv.alloc(bytes);
    this.bytes = bytes;
    return true;
  }

  release(): void {
    if (!this.bytes) return;
    this.drv.sync();
    this.drv.free(this.ptr);
    this.ptr = 0n;
    this.bytes = 0;
  }
}
