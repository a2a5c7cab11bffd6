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
 * The per-step activation arena: reset at each step, bump-allocated by every op, so a step's tensors land at the
 * same addresses every time it has the same shape (what CUDA graphs need). A step that outgrows it spills into
 * temporary allocations and the arena is regrown, once, at the next step; `generation` changes when it moves.
 */
export class Arena {
  private base: DevPtr = 0n;
  private capacity = 0;
  private offset = 0;
  private spills: DevPtr[] = [];
  /** Largest step seen, in bytes. */
  peak = 0;
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

  /** Starts a step: frees last step's spills and regrows if it spilled (the stream must be idle). */
  reset(): void {
    if (this.spills.length) {
      this.drv.sync();
      for (const p of this.spills) this.drv.free(p);
      this.spills = [];
      this.grow(Math.ceil(this.peak * 1.25));
    }
    this.offset = 0;
  }

  /** Makes room for at least `bytes` per step from now on. */
  ensure(bytes: number): void {
    if (bytes > this.capacity) {
      this.drv.sync();
      this.grow(bytes);
    }
  }

  alloc(bytes: number): DevPtr {
    const need = align(bytes);
    this.peak = Math.max(this.peak, this.offset + need);
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

  /** Fills the whole arena with NaN (as f32 and as bf16 pairs): tests check that every output element was written. */
  poison(): void {
    this.drv.fill32(this.base, 0x7fc07fc0, this.capacity / 4);
  }

  get capacityBytes(): number {
    return this.capacity;
  }
}
