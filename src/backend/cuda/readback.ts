import type { CudaDriver, DevPtr, Handle } from './driver.ts';
import type { StreamEvent } from './stream-event.ts';

/** What readbacks need of the driver (tests give a fake that simulates the stream). */
export type ReadbackDriver = Pick<CudaDriver, 'allocHost' | 'freeHost' | 'downloadTo'>;

interface Pinned {
  buffer: ArrayBuffer;
  addr: bigint;
  handle: Handle;
  copied: StreamEvent;
}

/** A queued device → host copy. */
export interface PendingRead {
  /** Resolves once the stream has run the copy (polled: the event loop stays free). */
  ready(): Promise<void>;
  /** Blocks until the copy has run; its bytes. Call once. */
  take(): Uint8Array;
}

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(256, n)));

/**
 * Device → host copies queued behind the stream's work and read when the device gets there: each pending copy has
 * its own pinned buffer and event, so several steps' rows can be on their way at once while the thread goes on.
 * A buffer is reused once its bytes have been copied out; there are as many as copies ever pending at once.
 */
export class Readbacks {
  private readonly idle: Pinned[] = [];

  constructor(
    private readonly drv: ReadbackDriver,
    private readonly newEvent: () => StreamEvent,
  ) {}

  /** Queues a copy of `bytes` at `src`; resolves with them once the stream has run it (the event loop free meanwhile). */
  async read(src: DevPtr, bytes: number): Promise<Uint8Array> {
    const pending = this.start(src, bytes);
    // A failed wait shows again in take(), which gives the buffer back either way.
    await pending.ready().catch(() => {});
    return pending.take();
  }

  /**
   * Queues a copy of `bytes` at `src` and returns at once; `take()` blocks until the stream has run it and returns the
   * bytes (once: the buffer goes back to the idle ones).
   */
  start(src: DevPtr, bytes: number): PendingRead {
    if (bytes === 0) return { ready: async () => {}, take: () => new Uint8Array(0) };
    const pinned = this.take(bytes);
    try {
      this.drv.downloadTo(pinned.addr, src, bytes);
      pinned.copied.record();
    } catch (err) {
      this.idle.push(pinned);
      throw err;
    }
    let taken = false;
    return {
      ready: () => pinned.copied.wait(),
      take: () => {
        if (taken) throw new Error('Readbacks: a pending read was taken twice');
        taken = true;
        try {
          pinned.copied.sync();
          return new Uint8Array(pinned.buffer, 0, bytes).slice();
        } finally {
          this.idle.push(pinned);
        }
      },
    };
  }

  /** An idle buffer of at least `bytes`, else a new one (replacing the smallest idle one, which is too small). */
  private take(bytes: number): Pinned {
    const fits = this.idle.findIndex((p) => p.buffer.byteLength >= bytes);
    if (fits >= 0) return this.idle.splice(fits, 1)[0]!;
    const smallest = this.idle.sort((a, b) => a.buffer.byteLength - b.buffer.byteLength).shift();
    if (smallest) this.drv.freeHost(smallest.handle);
    return { ...this.drv.allocHost(pow2(bytes)), copied: smallest?.copied ?? this.newEvent() };
  }
}

/**
 * A tensor's bytes (`rows` given: those rows, in order) copied to the host now, waiting for the stream: one copy per
 * run of consecutive rows (a step's prompt-logprob rows are one run).
 */
export function downloadRows(
  drv: Pick<CudaDriver, 'download'>,
  ptr: DevPtr,
  bytes: number,
  numRows: number,
  rows?: readonly number[],
): Uint8Array {
  if (!rows) {
    const all = new Uint8Array(bytes);
    if (all.length) drv.download(all, ptr);
    return all;
  }
  const rowBytes = bytes / numRows;
  const out = new Uint8Array(rows.length * rowBytes);
  for (let i = 0; i < rows.length; ) {
    let n = 1;
    while (i + n < rows.length && rows[i + n] === rows[i]! + n) n++;
    drv.download(out.subarray(i * rowBytes, (i + n) * rowBytes), ptr + BigInt(rows[i]! * rowBytes));
    i += n;
  }
  return out;
}
