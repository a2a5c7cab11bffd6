import type { CudaDriver, DevPtr } from './driver.ts';

const ALIGN = 256;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Bump allocation from large device allocations that are never freed one by one (the weights). Sized up front from
 * the checkpoint, it is one allocation; a tensor that does not fit opens another slab.
 */
export class Slab {
  private slabs: { base: DevPtr; size: number; used: number }[] = [];
  constructor(
    private readonly drv: CudaDriver,
    private readonly minSlab = 256 << 20,
  ) {}

  /** Makes the first slab exactly `bytes` large (call before the first alloc). */
  reserve(bytes: number): void {
    if (this.slabs.length === 0 && bytes > 0) this.slabs.push({ base: this.drv.alloc(bytes), size: bytes, used: 0 });
  }

  alloc(bytes: number): DevPtr {
    const need = align(bytes);
    let s = this.slabs.at(-1);
    if (!s || s.used + need > s.size) {
      const size = Math.max(this.minSlab, need);
      s = { base: this.drv.alloc(size), size, used: 0 };
      this.slabs.push(s);
    }
    const p = s.base + BigInt(s.used);
    s.used += need;
    return p;
  }

  get allocations(): number {
    return this.slabs.length;
  }

  get reservedBytes(): number {
    return this.slabs.reduce((a, s) => a + s.size, 0);
  }

  get usedBytes(): number {
    return this.slabs.reduce((a, s) => a + s.used, 0);
  }
}

/**
 * The per-step activation arena: reset at each step and bump-allocated by every op, so a step's tensors land at the
 * same addresses every time it has the same shape (what CUDA graphs need). No tensor of a forward outlives the
 * layer after the one that made it, so when a large step reaches the end the arena wraps to its start, provided it
 * holds at least three layers' worth of allocations (layers are marked by each KV write). A step that cannot wrap
 * spills into temporary allocations and the arena is regrown, once, at the next step; `generation` changes when it
 * moves.
 */
export class Arena {
  private base: DevPtr = 0n;
  private capacity = 0;
  private offset = 0;
  private spills: DevPtr[] = [];
  /** Bytes allocated in this step so far, and where the current layer began. */
  private stepBytes = 0;
  private layerStart = 0;
  /** Largest single layer's allocations in this step. */
  private layerSpan = 0;
  /** Largest step seen (bytes allocated, wrapping or not) and largest layer span seen. */
  peak = 0;
  peakLayer = 0;
  generation = 0;

  constructor(
    private readonly drv: CudaDriver,
    initial = 64 << 20,
  ) {
    this.grow(initial);
  }

  private grow(bytes: number): void {
    if (this.capacity) this.drv.free(this.base);
    this.capacity = align(bytes);
    this.base = this.drv.alloc(this.capacity);
    this.generation++;
  }

  /** Bytes that hold a step of this shape: all of it, or three layers when it can wrap. */
  private needed(): number {
    return Math.ceil(Math.min(this.peak, this.peakLayer ? 3.3 * this.peakLayer : this.peak) * 1.05);
  }

  /** Starts a step: frees last step's spills and regrows if it spilled (the stream must be idle). */
  reset(): void {
    if (this.spills.length) {
      this.drv.sync();
      for (const p of this.spills) this.drv.free(p);
      this.spills = [];
      if (this.needed() > this.capacity) this.grow(this.needed());
    }
    this.offset = 0;
    this.stepBytes = 0;
    this.layerStart = 0;
    this.layerSpan = 0;
  }

  /** Marks the start of the next layer (called at each KV write). */
  markLayer(): void {
    this.layerSpan = Math.max(this.layerSpan, this.stepBytes - this.layerStart);
    this.peakLayer = Math.max(this.peakLayer, this.layerSpan);
    this.layerStart = this.stepBytes;
  }

  /** Makes room for at least `bytes` from now on. */
  ensure(bytes: number): void {
    if (bytes > this.capacity) {
      this.drv.sync();
      this.grow(bytes);
    }
  }

  alloc(bytes: number): DevPtr {
    const need = align(bytes);
    this.stepBytes += need;
    this.peak = Math.max(this.peak, this.stepBytes);
    if (this.offset + need > this.capacity && this.layerSpan > 0 && this.capacity >= 3 * this.layerSpan) {
      this.offset = 0;
    }
    if (this.offset + need <= this.capacity) {
      const p = this.base + BigInt(this.offset);
      this.offset += need;
      return p;
    }
    this.offset += need;
    const p = this.drv.alloc(need);
    this.spills.push(p);
    return p;
  }

  /**
   * Fills the whole arena with NaN (as f32 and as bf16 pairs), or with `word` (a byte pattern no quantized output
   * takes): tests check that every output element was written.
   */
  poison(word = 0x7fc07fc0): void {
    this.drv.fill32(this.base, word, this.capacity / 4);
  }

  get capacityBytes(): number {
    return this.capacity;
  }
}
