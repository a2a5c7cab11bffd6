import { hostByteLength, readHostBytes } from '../../primitives/lazy-tensor.ts';
import type { DType, HostTensor } from '../backend.ts';
import type { DevPtr, Handle } from './driver.ts';
import type { StreamEvent } from './stream-event.ts';
import { type Conversion, type ConvertJob, weightLayout } from './weight-convert.ts';

/** Where in a slot each tensor's bytes start (a multiple of this). */
const STAGE_ALIGN = 16;
/** What the upload ring asks of the driver (CudaDriver; a fake in tests). */
export interface UploadDevice {
  allocHost(bytes: number): { buffer: ArrayBuffer; addr: bigint; handle: Handle };
  freeHost(handle: Handle): void;
  alloc(bytes: number): DevPtr;
  free(p: DevPtr): void;
  /** Host → device on the stream, from a pinned address. */
  uploadFrom(dst: DevPtr, srcAddr: bigint, bytes: number): void;
  sync(): void;
}

/** Three slots of 64 MiB: reading one while another's copy runs, the third as slack for a slow copy. */
export const UPLOAD_SLOTS = 3;
export const UPLOAD_SLOT_BYTES = 64 << 20;

interface Slot {
  host: { buffer: ArrayBuffer; addr: bigint; handle: Handle };
  view: Uint8Array;
  /** Device staging for chunks the conversion kernel reads (allocated on the first conversion). */
  staging: DevPtr | null;
  /** An event was recorded after this slot's last copy and not yet waited on. */
  inFlight: boolean;
}

/** What the uploads since the ring was opened took. */
export interface UploadStats {
  bytes: number;
  tensors: number;
  /** Milliseconds reading from disk into pinned memory, and waiting for a slot's copy to leave it. */
  readMs: number;
  waitMs: number;
}

/**
 * Streams weights to the device through a ring of pinned staging slots: each chunk is read from the file straight into
 * a slot (no JS buffer in between), copied asynchronously from there, and the slot is filled again only once the event
 * recorded after its last copy has completed, so reading chunk i+1 overlaps copying chunk i. Small tensors share a
 * slot. A weight stored in another dtype, or transposed (GPT-2's Conv1D), is copied as stored into the slot's device
 * staging and converted into place by `convert` (kernels/convert.cu).
 */
export class WeightUploader {
  private readonly slots: Slot[] = [];
  /** One event per slot, made once and kept across loads. */
  private readonly events: StreamEvent[] = [];
  private current = 0;
  /** Bytes of the current slot already holding chunks. */
  private used = 0;
  private stats: UploadStats = { bytes: 0, tensors: 0, readMs: 0, waitMs: 0 };

  private readonly slotCount: number;
  private readonly slotBytes: number;
  private readonly progress: ((bytes: number) => void) | null;

  /** `progress` hears the bytes uploaded since the last `finish`, after every chunk. */
  constructor(
    private readonly dev: UploadDevice,
    private readonly newEvent: () => StreamEvent,
    private readonly convert: (job: ConvertJob) => void,
    opts: { slots?: number; slotBytes?: number; progress?: (bytes: number) => void } = {},
  ) {
    this.slotCount = opts.slots ?? UPLOAD_SLOTS;
    this.slotBytes = opts.slotBytes ?? UPLOAD_SLOT_BYTES;
    if (this.slotBytes < 4) throw new Error(`upload slots of ${this.slotBytes} bytes cannot hold one f32 element`);
    this.progress = opts.progress ?? null;
  }

  /** Queues `w` (stored bytes, any float dtype) to become the `dtype` weight at `dst`, transposed when asked. */
  upload(w: HostTensor, dst: DevPtr, dtype: DType, transpose: boolean): void {
    const { conversion, unit } = weightLayout(w, dtype, transpose);
    this.stream(w, dst, hostByteLength(w), unit, conversion);
  }

  /** Queues the first `bytes` bytes of `w` to land at `dst` exactly as stored (quantized blocks). */
  uploadStored(w: HostTensor, dst: DevPtr, bytes: number): void {
    this.stream(w, dst, bytes, 1, null);
  }

  private stream(w: HostTensor, dst: DevPtr, total: number, unit: number, conversion: Conversion | null): void {
    this.stats.tensors++;
    // Each tensor starts 16-byte aligned in its slot: a conversion reads its staged values in place (an f32 after an
    // odd count of 16-bit values or of quantized bytes would be misaligned, and that error ends the CUDA context).
    this.used = Math.min(this.slotBytes, Math.ceil(this.used / STAGE_ALIGN) * STAGE_ALIGN);
    for (let pos = 0; pos < total; ) {
      const slot = this.slot();
      let n = Math.min(total - pos, this.slotBytes - this.used);
      n -= n % unit;
      if (n === 0) {
        this.advance();
        continue;
      }
      const t0 = performance.now();
      readHostBytes(w, slot.view.subarray(this.used, this.used + n), pos);
      this.stats.readMs += performance.now() - t0;
      const src = slot.host.addr + BigInt(this.used);
      if (!conversion) {
        this.dev.uploadFrom(dst + BigInt(pos), src, n);
      } else {
        slot.staging ??= this.dev.alloc(this.slotBytes);
        const staged = slot.staging + BigInt(this.used);
        this.dev.uploadFrom(staged, src, n);
        this.convert({ ...conversion, out: dst, in: staged, count: n / unit, first: pos / unit });
      }
      this.stats.bytes += n;
      this.used += n;
      pos += n;
      if (this.used === this.slotBytes) this.advance();
      this.progress?.(this.stats.bytes);
    }
  }

  /** The current slot, allocated on first use, and free: its previous copies have left it. */
  private slot(): Slot {
    let slot = this.slots[this.current];
    if (!slot) {
      const host = this.dev.allocHost(this.slotBytes);
      slot = { host, view: new Uint8Array(host.buffer), staging: null, inFlight: false };
      this.slots[this.current] = slot;
      this.events[this.current] ??= this.newEvent();
    }
    if (slot.inFlight) {
      const t0 = performance.now();
      this.events[this.current]!.sync();
      this.stats.waitMs += performance.now() - t0;
      slot.inFlight = false;
    }
    return slot;
  }

  /** Closes the current slot behind an event and moves to the next. */
  private advance(): void {
    const slot = this.slots[this.current];
    if (slot && this.used > 0) {
      this.events[this.current]!.record();
      slot.inFlight = true;
    }
    this.current = (this.current + 1) % this.slotCount;
    this.used = 0;
  }

  /** Waits for every queued copy and conversion, frees the slots and returns what was uploaded since the last call. */
  finish(): UploadStats {
    if (this.slots.length) this.dev.sync();
    for (const s of this.slots) {
      this.dev.freeHost(s.host.handle);
      if (s.staging !== null) this.dev.free(s.staging);
    }
    this.slots.length = 0;
    this.current = 0;
    this.used = 0;
    const stats = this.stats;
    this.stats = { bytes: 0, tensors: 0, readMs: 0, waitMs: 0 };
    return stats;
  }
}
