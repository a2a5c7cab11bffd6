import type { SampledIds, SamplingRow, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { GrowingBuffer } from './growing-buffer.ts';
import { declareKernel } from './kernel.ts';
import type { PendingRead } from './readback.ts';
import type { StreamEvent } from './stream-event.ts';
import { cuda, rowsCols } from './tensor.ts';

/**
 * kernels/sampling.cu: grid [rows, slices] of 1024-thread blocks, `slice` floats of dynamic shared memory;
 * `params` is a RowParams [rows] array (PARAM_WORDS each), `partials` [rows, slices] (value, id) pairs, `done` one
 * zeroed counter per row (the kernel sets each back to zero).
 */
export const SAMPLE_ROWS = declareKernel('sampling', 'sample_rows', {
  outIds: 'ptr',
  logits: 'ptr',
  scratch: 'ptr',
  partials: 'ptr',
  done: 'ptr',
  params: 'ptr',
  seenTokens: 'ptr',
  seenCounts: 'ptr',
  biasTokens: 'ptr',
  biasValues: 'ptr',
  masks: 'ptr',
  maskWords: 'i32',
  vocab: 'i32',
  slice: 'i32',
});

/** Words per row in the kernel's RowParams struct (6 floats, 10 ints; the last is the row's mask index, -1 none). */
const PARAM_WORDS = 16;

/** Tokens one block of a row without threshold scores at most: its slice in shared memory (32 KiB, under 48). */
const MAX_SLICE = 8192;
/** Tokens per block at least: a few per thread, so a block's fixed costs stay small beside its work. */
const MIN_SLICE = 2048;
/** Blocks a launch spreads rows over: enough to fill a large card (132 SMs on an H100) at batch 1 to 4. */
const TARGET_BLOCKS = 256;

/**
 * The vocabulary slice each block of a row without threshold takes: rows · vocab spread over TARGET_BLOCKS blocks,
 * in whole 1024-token steps between MIN_SLICE and MAX_SLICE (at 1 row, 150k tokens: 74 slices of 2048; at 64
 * rows: 19 of 8192).
 */
function sliceTokens(rows: number, vocab: number): number {
  const even = Math.ceil((rows * vocab) / TARGET_BLOCKS / 1024) * 1024;
  return Math.min(Math.max(even, MIN_SLICE), MAX_SLICE);
}

/** A device buffer that grows by at least doubling; a `zeroed` one is zero-filled whenever it is (re)allocated. */
class Grow {
  private readonly buffer: GrowingBuffer;
  constructor(
    private readonly ctx: CudaContext,
    private readonly zeroed = false,
  ) {
    this.buffer = new GrowingBuffer(ctx.drv);
  }
  need(bytes: number): DevPtr {
    const b = this.buffer;
    if (bytes > b.bytes) {
      b.grow(Math.max(bytes, b.bytes * 2, 4096));
      if (this.zeroed) this.ctx.drv.fill32(b.ptr, 0, b.bytes / 4);
    }
    return b.ptr;
  }
}

/**
 * Page-locked host memory that only grows: the metadata is written here and copied from it, so a step's upload (up
 * to a megabyte of masks) neither allocates a fresh buffer nor goes through the driver's pageable staging. The
 * sampler takes two in turn: a launch that does not wait for its ids (async scheduling) leaves its upload queued
 * behind the step while the next launch's metadata is written; `copied` marks where the upload was queued.
 */
class PinnedGrow {
  private pinned: ReturnType<CudaContext['drv']['allocHost']> | null = null;
  constructor(
    private readonly ctx: CudaContext,
    readonly copied: StreamEvent,
  ) {}
  need(bytes: number): { buffer: ArrayBuffer; addr: bigint } {
    if (!this.pinned || this.pinned.buffer.byteLength < bytes) {
      const old = this.pinned;
      if (old) this.ctx.drv.freeHost(old.handle);
      this.pinned = this.ctx.drv.allocHost(Math.max(bytes, 2 * (old?.buffer.byteLength ?? 0), 65536));
    }
    return this.pinned;
  }
}

/** Splits a seed (any safe integer, negative ones as two's complement) into two 32-bit Philox key words. */
export function seedWords(seed: number): [number, number] {
  const u = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
  return [Number(u & 0xffffffffn), Number(u >> 32n)];
}

/**
 * Logits processing and sampling on the device (kernels/sampling.cu): one launch for all rows, each spread over
 * vocabulary slices unless it cuts by a threshold, then only the token ids are copied back. Buffers are its own, not
 * the step arena, so it also works after a graph replay.
 */
export class DeviceSampler {
  private readonly scratch: Grow;
  private readonly partials: Grow;
  private readonly done: Grow;
  private readonly meta: Grow;
  private readonly ids: Grow;
  private readonly hosts: PinnedGrow[];
  private turn = 0;

  constructor(
    private readonly ctx: CudaContext,
    newEvent: () => StreamEvent,
  ) {
    this.scratch = new Grow(ctx);
    this.partials = new Grow(ctx);
    this.done = new Grow(ctx, true);
    this.meta = new Grow(ctx);
    this.ids = new Grow(ctx);
    this.hosts = [new PinnedGrow(ctx, newEvent()), new PinnedGrow(ctx, newEvent())];
  }

  reserve(rows: number, vocab: number): void {
    this.scratch.need(rows * vocab * 4);
    this.partials.need(rows * Math.ceil(vocab / sliceTokens(rows, vocab)) * 8);
    this.done.need(rows * 4);
    this.ids.need(rows * 4);
    this.meta.need(rows * 64 + rows * Math.ceil(vocab / 32) * 4 + 65536);
  }

  /** Samples `rows` and waits for their ids. */
  sample(logits: Tensor, rows: readonly SamplingRow[]): Int32Array {
    const out = new Int32Array(rows.length);
    if (rows.length > 0) this.ctx.drv.download(out, this.launch(logits, rows));
    return out;
  }

  /**
   * Queues the sampling of `rows` (at least one) and returns where their ids will be: `[rows]` int32 on the device,
   * valid until the next launch's kernel runs.
   */
  launch(logits: Tensor, rows: readonly SamplingRow[]): DevPtr {
    const lt = cuda(logits);
    const [logitRows, V] = rowsCols(lt);
    const R = rows.length;
    let seen = 0;
    let bias = 0;
    let masked = 0;
    // Mask rows as long as the longest mask (a grammar's vocabulary may stop short of a padded model vocabulary):
    // the kernel allows no token past a row's words.
    let maskWords = 0;
    for (const r of rows) {
      seen += r.seenTokens?.length ?? 0;
      bias += r.logitBias ? Object.keys(r.logitBias).length : 0;
      if (r.allowedTokens) {
        masked++;
        maskWords = Math.max(maskWords, Math.min(r.allowedTokens.length, Math.ceil(V / 32)));
      }
    }
    // One host buffer: params [R, 16] | seen tokens | seen counts | bias tokens | bias values | masks [masked, words].
    const words = R * PARAM_WORDS + 2 * seen + 2 * bias + masked * maskWords;
    const pinned = this.hosts[this.turn]!;
    this.turn = 1 - this.turn;
    // Its last upload (two launches ago) normally ran long since.
    pinned.copied.sync();
    const host = pinned.need(words * 4);
    const f = new Float32Array(host.buffer, 0, words);
    const i32 = new Int32Array(host.buffer, 0, words);
    const seenAt = R * PARAM_WORDS;
    const countsAt = seenAt + seen;
    const biasAt = countsAt + seen;
    const biasValAt = biasAt + bias;
    const masksAt = biasValAt + bias;
    // A shorter row's words past its end stay 0: its tokens there are not allowed.
    i32.fill(0, masksAt);
    let s = 0;
    let b = 0;
    let m = 0;
    rows.forEach((r, k) => {
      const o = k * PARAM_WORDS;
      f[o] = r.temperature;
      f[o + 1] = r.topP;
      f[o + 2] = r.minP;
      f[o + 3] = r.repetitionPenalty;
      f[o + 4] = r.presencePenalty;
      f[o + 5] = r.frequencyPenalty;
      const [lo, hi] = seedWords(r.seed);
      i32[o + 6] = r.topK;
      i32[o + 7] = lo | 0;
      i32[o + 8] = hi | 0;
      i32[o + 9] = r.step;
      i32[o + 10] = s;
      if (r.seenTokens) {
        i32.set(r.seenTokens, seenAt + s);
        i32.set(r.seenCounts ?? new Int32Array(r.seenTokens.length), countsAt + s);
        s += r.seenTokens.length;
      }
      i32[o + 11] = s;
      i32[o + 12] = b;
      for (const [id, v] of Object.entries(r.logitBias ?? {})) {
        // Ids outside the vocabulary change nothing, as on the CPU (the kernel indexes the row with them).
        if (!(Number(id) >= 0 && Number(id) < V)) continue;
        i32[biasAt + b] = Number(id);
        f[biasValAt + b] = v;
        b++;
      }
      i32[o + 13] = b;
      const from = r.logitRow ?? k;
      if (!(from >= 0 && from < logitRows)) throw new Error(`sampleTokens: logit row ${from} of ${logitRows}`);
      i32[o + 14] = from;
      i32[o + 15] = -1;
      if (r.allowedTokens) {
        i32.set(r.allowedTokens.subarray(0, maskWords), masksAt + m * maskWords);
        i32[o + 15] = m++;
      }
    });
    const drv = this.ctx.drv;
    const meta = this.meta.need(words * 4);
    drv.uploadFrom(meta, host.addr, words * 4);
    pinned.copied.record();
    const ids = this.ids.need(R * 4);
    const scratch = this.scratch.need(R * V * 4);
    const slice = sliceTokens(R, V);
    const slices = Math.ceil(V / slice);
    const partials = this.partials.need(R * slices * 8);
    const done = this.done.need(R * 4);
    const at = (w: number) => meta + BigInt(w * 4);
    this.ctx.kernel(SAMPLE_ROWS).launch(
      [R, slices],
      [1024],
      {
        outIds: ids,
        logits: lt.ptr,
        scratch,
        partials,
        done,
        params: meta,
        seenTokens: at(seenAt),
        seenCounts: at(countsAt),
        biasTokens: at(biasAt),
        biasValues: at(biasValAt),
        masks: at(masksAt),
        maskWords,
        vocab: V,
        slice,
      },
      slice * 4,
    );
    return ids;
  }
}

/** Ids the device sampler wrote at `ptr` (`DeviceSampler.launch`), with their copy to the host under way. */
export class DeviceSampledIds implements SampledIds {
  constructor(
    readonly ptr: DevPtr,
    readonly count: number,
    private readonly copy: PendingRead,
  ) {}

  collect(): Int32Array {
    const bytes = this.copy.take();
    return new Int32Array(bytes.buffer, bytes.byteOffset, this.count);
  }
}
