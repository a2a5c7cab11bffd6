import type { DevPtr, Handle } from '../../src/backend/cuda/driver.ts';
import type { ReadbackDriver } from '../../src/backend/cuda/readback.ts';
import type { StagingDriver } from '../../src/backend/cuda/step-buffers.ts';
import type { StreamEvent } from '../../src/backend/cuda/stream-event.ts';
import { pollUntil } from '../../src/util/poll.ts';

/**
 * A simulated CUDA stream for the host side of copies: device and pinned memory are plain buffers, and queued work
 * (copies, event records, "kernels") runs only when the test lets the device advance, or when the host blocks on it
 * (`sync`, an event's `sync`). A copy reads its source when it runs, as the real one does, so a host buffer rewritten
 * too early shows up as wrong bytes on the device.
 */
export class FakeStream implements StagingDriver, ReadbackDriver {
  private readonly queue: (() => void)[] = [];
  private readonly device = new Map<DevPtr, Uint8Array>();
  private readonly pinned = new Map<bigint, ArrayBuffer>();
  private nextDevice = 0x1000_0000n;
  private nextHost = 0x7000_0000n;
  /** Operations the device has run, and pinned allocations made. */
  ran = 0;
  hostAllocations = 0;

  get pending(): number {
    return this.queue.length;
  }

  /** Runs the next `n` queued operations (all by default). */
  advance(n = this.queue.length): void {
    for (let i = 0; i < n; i++) {
      const op = this.queue.shift();
      if (!op) throw new Error('the fake stream has nothing queued');
      op();
      this.ran++;
    }
  }

  /** Queues device work: `fn` runs when the stream gets there. */
  kernel(fn: () => void): void {
    this.queue.push(fn);
  }

  alloc(bytes: number): DevPtr {
    const p = this.nextDevice;
    this.device.set(p, new Uint8Array(bytes));
    this.nextDevice += BigInt(bytes + 4096);
    return p;
  }

  free(p: DevPtr): void {
    if (!this.device.delete(p)) throw new Error(`free of ${p}: not allocated`);
  }

  allocHost(bytes: number): { buffer: ArrayBuffer; addr: bigint; handle: Handle } {
    const addr = this.nextHost;
    const buffer = new ArrayBuffer(bytes);
    this.pinned.set(addr, buffer);
    this.nextHost += BigInt(bytes + 4096);
    this.hostAllocations++;
    return { buffer, addr, handle: addr };
  }

  freeHost(handle: Handle): void {
    if (!this.pinned.delete(handle as bigint)) throw new Error(`freeHost of ${handle}: not allocated`);
  }

  uploadFrom(dst: DevPtr, srcAddr: bigint, bytes: number): void {
    this.queue.push(() => this.bytesAt(dst, bytes).set(new Uint8Array(this.hostAt(srcAddr), 0, bytes)));
  }

  downloadTo(dstAddr: bigint, src: DevPtr, bytes: number): void {
    this.queue.push(() => new Uint8Array(this.hostAt(dstAddr), 0, bytes).set(this.bytesAt(src, bytes)));
  }

  sync(): void {
    this.advance();
  }

  /** Device memory at `p` (inside an allocation), as the device sees it now. */
  bytesAt(p: DevPtr, bytes: number): Uint8Array {
    for (const [base, mem] of this.device) {
      const at = Number(p - base);
      if (p >= base && at + bytes <= mem.length) return mem.subarray(at, at + bytes);
    }
    throw new Error(`device range ${p}+${bytes} is not allocated`);
  }

  private hostAt(addr: bigint): ArrayBuffer {
    const b = this.pinned.get(addr);
    if (!b) throw new Error(`pinned buffer ${addr} is not allocated (freed while a copy was queued?)`);
    return b;
  }

  event(): StreamEvent {
    let last: { ran: boolean } | null = null;
    const done = () => !last || last.ran;
    return {
      record: () => {
        const mark = { ran: false };
        last = mark;
        this.queue.push(() => {
          mark.ran = true;
        });
      },
      done,
      wait: () => pollUntil(done),
      sync: () => {
        while (!done()) this.advance(1);
      },
    };
  }
}
