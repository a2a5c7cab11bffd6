import type { StepBatch } from '../../primitives/step-batch.ts';
import type { StepContext } from '../backend.ts';
import type { CudaDriver, DevPtr, Handle } from './driver.ts';
import type { StreamEvent } from './stream-event.ts';

/** A step's metadata on the device. The block table is repacked to a fixed row width so graphs can be replayed. */
export class CudaStepContext implements StepContext {
  constructor(
    readonly batch: StepBatch,
    readonly ids: DevPtr,
    readonly positions: DevPtr,
    readonly slots: DevPtr,
    readonly logitRows: DevPtr,
    readonly cuSeqlensQ: DevPtr,
    readonly contextLens: DevPtr,
    readonly blockTables: DevPtr,
    /** Row width of `blockTables` on the device (>= batch.maxBlocksPerSeq). */
    readonly tableWidth: number,
    /** `[T]` token types (BERT's segments; zeros when the batch has none). */
    readonly tokenTypes: DevPtr,
  ) {}
}

export interface StepCapacity {
  tokens: number;
  seqs: number;
  blocksPerSeq: number;
}

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** What the step buffers need of the driver (tests give a fake that simulates the stream). */
export type StagingDriver = Pick<CudaDriver, 'alloc' | 'free' | 'allocHost' | 'freeHost' | 'uploadFrom' | 'sync'>;

/** A pinned staging buffer and the event recorded after the copy that last read it. */
interface Staging {
  pinned: { buffer: ArrayBuffer; addr: bigint; handle: Handle };
  ints: Int32Array;
  copied: StreamEvent;
}

/**
 * The device buffers a step's metadata is copied into: one region at fixed offsets (so the addresses captured in a
 * graph stay valid), filled by one copy from a pinned staging buffer. Two staging buffers take turns, so a step's
 * metadata is written while the previous step (launched, not yet run) still waits for its copy; the device region
 * itself is safe to refill, as the stream runs each copy after the steps queued before it. Grows when a step
 * outgrows it; `generation` changes then.
 */
export class StepBuffers {
  private cap: StepCapacity = { tokens: 0, seqs: 0, blocksPerSeq: 0 };
  private dev: DevPtr = 0n;
  private readonly staging: Staging[];
  private turn = 0;
  generation = 0;

  constructor(
    private readonly drv: StagingDriver,
    newEvent: () => StreamEvent,
  ) {
    this.staging = [0, 1].map(() => ({
      pinned: { buffer: new ArrayBuffer(0), addr: 0n, handle: null },
      ints: new Int32Array(0),
      copied: newEvent(),
    }));
  }

  private ints(c: StepCapacity): number {
    return 5 * c.tokens + 2 * c.seqs + 1 + c.seqs * c.blocksPerSeq;
  }

  get capacity(): Readonly<StepCapacity> {
    return this.cap;
  }

  /** Grows the buffers to hold at least `want`. */
  reserve(want: StepCapacity): void {
    const c = this.cap;
    if (want.tokens <= c.tokens && want.seqs <= c.seqs && want.blocksPerSeq <= c.blocksPerSeq) return;
    const next = {
      tokens: Math.max(c.tokens, pow2(want.tokens)),
      seqs: Math.max(c.seqs, pow2(want.seqs)),
      blocksPerSeq: Math.max(c.blocksPerSeq, pow2(want.blocksPerSeq)),
    };
    this.drv.sync();
    if (this.dev) this.drv.free(this.dev);
    const bytes = this.ints(next) * 4;
    this.dev = this.drv.alloc(bytes);
    for (const s of this.staging) {
      if (s.pinned.handle) this.drv.freeHost(s.pinned.handle);
      s.pinned = this.drv.allocHost(bytes);
      s.ints = new Int32Array(s.pinned.buffer);
    }
    this.cap = next;
    this.generation++;
  }

  get pinnedBytes(): number {
    return this.staging.reduce((a, s) => a + s.ints.byteLength, 0);
  }

  upload(b: StepBatch): CudaStepContext {
    const T = b.inputIds.length;
    this.reserve({ tokens: T, seqs: b.numSeqs, blocksPerSeq: b.maxBlocksPerSeq });
    const { tokens: cT, seqs: cS, blocksPerSeq: W } = this.cap;
    const staging = this.staging[this.turn]!;
    this.turn = 1 - this.turn;
    // The copy that last read this buffer (two steps ago) must have run before it is rewritten; it normally has.
    staging.copied.sync();
    const s = staging.ints;
    s.set(b.inputIds, 0);
    s.set(b.positions, cT);
    s.set(b.slotMapping, 2 * cT);
    s.set(b.logitsIndices, 3 * cT);
    // Token types (BERT's segments) are zeros when the batch has none.
    if (b.tokenTypeIds) s.set(b.tokenTypeIds, 4 * cT);
    else s.fill(0, 4 * cT, 4 * cT + T);
    const cuq = 5 * cT;
    s.set(b.cuSeqlensQ, cuq);
    s.set(b.contextLens, cuq + cS + 1);
    const tables = cuq + 2 * cS + 1;
    const w = b.maxBlocksPerSeq;
    for (let i = 0; i < b.numSeqs; i++) {
      s.set(b.blockTables.subarray(i * w, (i + 1) * w), tables + i * W);
      s.fill(0, tables + i * W + w, tables + (i + 1) * W);
    }
    const used = (tables + b.numSeqs * W) * 4;
    this.drv.uploadFrom(this.dev, staging.pinned.addr, used);
    staging.copied.record();
    const at = (i: number) => this.dev + BigInt(i * 4);
    const [cuSeqlens, contextLens] = [at(cuq), at(cuq + cS + 1)];
    return new CudaStepContext(
      b,
      at(0),
      at(cT),
      at(2 * cT),
      at(3 * cT),
      cuSeqlens,
      contextLens,
      at(tables),
      W,
      at(4 * cT),
    );
  }
}

/** True when `b` is decode-only with one logit row per sequence, in order (the shape CUDA graphs are captured for). */
export function isPlainDecode(b: StepBatch): boolean {
  if (b.kvCompression?.length) return false; // its compaction reads host-chosen entries
  if (b.maxSeqlenQ !== 1 || b.inputIds.length !== b.numSeqs || b.logitsIndices.length !== b.numSeqs) return false;
  for (let i = 0; i < b.numSeqs; i++) if (b.logitsIndices[i] !== i) return false;
  return true;
}

/** A decode batch padded to `size` sequences: padding tokens write nowhere (slot -1) and attend to one key. */
export function padDecodeBatch(b: StepBatch, size: number): StepBatch {
  const n = b.numSeqs;
  if (size === n) return b;
  const grow = (a: Int32Array, len: number, fill: number) => {
    const out = new Int32Array(len).fill(fill);
    out.set(a);
    return out;
  };
  const cuq = new Int32Array(size + 1);
  for (let i = 0; i <= size; i++) cuq[i] = i;
  const logits = new Int32Array(size);
  for (let i = 0; i < size; i++) logits[i] = i;
  return {
    inputIds: grow(b.inputIds, size, 0),
    positions: grow(b.positions, size, 0),
    slotMapping: grow(b.slotMapping, size, -1),
    cuSeqlensQ: cuq,
    contextLens: grow(b.contextLens, size, 1),
    blockTables: grow(b.blockTables, size * b.maxBlocksPerSeq, 0),
    maxBlocksPerSeq: b.maxBlocksPerSeq,
    blockSize: b.blockSize,
    logitsIndices: logits,
    numSeqs: size,
    maxSeqlenQ: 1,
  };
}
