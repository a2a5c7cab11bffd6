import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType, HostTensor } from '../../src/backend/backend.ts';
import type { DevPtr } from '../../src/backend/cuda/driver.ts';
import type { StreamEvent } from '../../src/backend/cuda/stream-event.ts';
import { hostBytesAs } from '../../src/backend/cuda/tensor.ts';
import { type ConvertJob, convertWeightHost, weightLayout } from '../../src/backend/cuda/weight-convert.ts';
import { type UploadDevice, WeightUploader } from '../../src/backend/cuda/weight-upload.ts';
import { bf16Bits, f16Bits } from '../../src/primitives/float-bits.ts';
import { LazyHostTensor } from '../../src/primitives/lazy-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';

type Op =
  | { kind: 'copy'; dst: DevPtr; src: bigint; n: number }
  | { kind: 'convert'; job: ConvertJob }
  | { kind: 'event'; event: number };

const SIZE: Record<number, number> = { 0: 4, 1: 2, 2: 2 };

/**
 * A device whose stream runs nothing until made to (an event waited on, or a sync): the latest any copy may run, so a
 * slot refilled before its copy ran sends the wrong bytes. Host and device memory are byte arrays at fake addresses.
 */
class LazyStream implements UploadDevice {
  readonly device = new Uint8Array(8 << 20);
  private deviceTop = 0;
  readonly hosts = new Map<number, { addr: bigint; bytes: Uint8Array }>();
  private nextHandle = 1;
  queue: Op[] = [];
  readonly log: string[] = [];
  events = 0;
  freedStaging = 0;
  allocs = 0;

  allocHost(bytes: number) {
    const handle = this.nextHandle++;
    const buffer = new ArrayBuffer(bytes);
    const addr = BigInt(handle) << 32n;
    this.hosts.set(handle, { addr, bytes: new Uint8Array(buffer) });
    return { buffer, addr, handle };
  }
  freeHost(handle: unknown) {
    assert.ok(this.hosts.delete(handle as number), 'a pinned buffer freed once');
  }
  /** 256-byte aligned, as cuMemAlloc's pointers are. */
  alloc(bytes: number): DevPtr {
    const p = BigInt(this.deviceTop);
    this.deviceTop += Math.ceil(bytes / 256) * 256;
    this.allocs++;
    return p;
  }
  free(): void {
    this.freedStaging++;
  }
  uploadFrom(dst: DevPtr, src: bigint, n: number) {
    this.queue.push({ kind: 'copy', dst, src, n });
  }
  /** An event on this stream, numbered from 1 in the order made. */
  newEvent = (): StreamEvent => {
    const e = ++this.events;
    const recorded = () => this.queue.some((op) => op.kind === 'event' && op.event === e);
    return {
      record: () => this.queue.push({ kind: 'event', event: e }),
      done: () => !recorded(),
      wait: async () => this.sync(),
      sync: () => {
        let at = this.queue.length - 1;
        while (at >= 0 && !(this.queue[at]!.kind === 'event' && (this.queue[at] as { event: number }).event === e))
          at--;
        this.run(at + 1);
        this.log.push(`wait ${e}`);
      },
    };
  };
  sync() {
    this.run(this.queue.length);
  }
  convert = (job: ConvertJob) => this.queue.push({ kind: 'convert', job });

  private hostBytes(addr: bigint, n: number): Uint8Array {
    for (const h of this.hosts.values()) {
      const off = Number(addr - h.addr);
      if (off >= 0 && off + n <= h.bytes.length) return h.bytes.subarray(off, off + n);
    }
    throw new Error(`no pinned memory at ${addr}`);
  }
  private run(count: number) {
    for (const op of this.queue.splice(0, count)) {
      if (op.kind === 'copy') this.device.set(this.hostBytes(op.src, op.n), Number(op.dst));
      else if (op.kind === 'convert') {
        const j = op.job;
        const outBytes = j.rows * j.cols * SIZE[j.dstType]!;
        const chunk = this.device.subarray(Number(j.in), Number(j.in) + j.count * SIZE[j.srcType]!);
        convertWeightHost(this.device.subarray(Number(j.out), Number(j.out) + outBytes), chunk, j);
      }
    }
  }
  /** Whether a queued copy still reads the pinned bytes `view` covers. */
  pendingReadOf(view: Uint8Array): boolean {
    for (const h of this.hosts.values()) {
      if (h.bytes.buffer !== view.buffer) continue;
      const lo = h.addr + BigInt(view.byteOffset);
      const hi = lo + BigInt(view.length);
      return this.queue.some((op) => op.kind === 'copy' && op.src < hi && op.src + BigInt(op.n) > lo);
    }
    return false;
  }
}

const DTYPE_SIZE: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

/** Values with the cases rounding must get right: ties, subnormals, overflow to infinity in half, signed zeros. */
function values(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const special = [
    0,
    -0,
    1,
    -1,
    65504,
    65520,
    1e-8,
    -6.1e-5,
    3.0e-41,
    1 + 2 ** -8,
    1 + 3 * 2 ** -9,
    Infinity,
    -Infinity,
  ];
  return Float32Array.from({ length: n }, (_, i) =>
    i < special.length ? special[i]! : (rnd() - 0.5) * 2 ** Math.floor(rnd() * 40 - 20),
  );
}

function stored(dtype: DType, v: Float32Array): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(v.buffer.slice(0));
  const bits = Uint16Array.from(v, dtype === 'bf16' ? bf16Bits : f16Bits);
  return new Uint8Array(bits.buffer);
}

/** A lazy tensor over `bytes` whose every read checks that no queued copy still reads the slot it fills. */
function lazy(dev: LazyStream, name: string, shape: number[], dtype: DType, bytes: Uint8Array): HostTensor {
  return new LazyHostTensor(name, shape, dtype, bytes.length, (dst, from) => {
    assert.ok(!dev.pendingReadOf(dst), `${name}: bytes [${from}, ${from + dst.length}) overwrite a slot still copying`);
    dev.log.push(`read ${name} ${from}+${dst.length}`);
    dst.set(bytes.subarray(from, from + dst.length));
  });
}

interface Case {
  name: string;
  shape: number[];
  from: DType;
  transpose?: boolean;
}

/** Uploads `cases` in order through a ring of `slots` x `slotBytes` into one device region; returns what arrived. */
function uploadAll(cases: Case[], to: DType, slots: number, slotBytes: number) {
  const dev = new LazyStream();
  const ring = new WeightUploader(dev, dev.newEvent, dev.convert, { slots, slotBytes });
  const placed = cases.map((c, i) => {
    const n = c.shape.reduce((a, d) => a * d, 1);
    const bytes = stored(c.from, values(n, i + 1));
    const host: HostTensor = { name: c.name, shape: c.shape, dtype: c.from, bytes };
    const ptr = dev.alloc(n * DTYPE_SIZE[to]);
    ring.upload(lazy(dev, c.name, c.shape, c.from, bytes), ptr, to, c.transpose === true);
    return { c, ptr, expected: hostBytesAs(host, to, c.transpose === true) };
  });
  const stats = ring.finish();
  return { dev, placed, stats };
}

function assertArrived(r: ReturnType<typeof uploadAll>) {
  for (const { c, ptr, expected } of r.placed) {
    const got = r.dev.device.subarray(Number(ptr), Number(ptr) + expected.length);
    assert.deepEqual(Buffer.from(got), Buffer.from(expected), `${c.name} arrived bit for bit at its offset`);
  }
}

test('bytes as stored: every byte at its device offset, chunks split inside tensors and small tensors sharing a slot', () => {
  const cases: Case[] = [
    { name: 'small', shape: [3], from: 'bf16' },
    { name: 'big', shape: [7, 33], from: 'bf16' },
    { name: 'tiny', shape: [1], from: 'bf16' },
    { name: 'exact', shape: [32], from: 'bf16' },
    { name: 'odd', shape: [5, 13], from: 'bf16' },
    { name: 'empty', shape: [0], from: 'bf16' },
  ];
  for (const slotBytes of [64, 30, 1000]) {
    const r = uploadAll(cases, 'bf16', 3, slotBytes);
    assertArrived(r);
    const total = cases.reduce((a, c) => a + c.shape.reduce((x, d) => x * d, 1) * 2, 0);
    assert.equal(r.stats.bytes, total);
    assert.equal(r.stats.tensors, cases.length);
    assert.equal(r.dev.hosts.size, 0, 'finish frees every pinned slot');
    assert.ok(r.dev.events <= 3, 'one event per slot');
    assert.equal(r.dev.allocs, cases.length, 'no device staging for bytes copied as stored');
  }
});

test('a slot is refilled only after the event recorded after its last copy, and the ring is used in order', () => {
  const r = uploadAll([{ name: 'w', shape: [4, 40], from: 'f32' }], 'f32', 3, 64);
  assertArrived(r);
  const reads = r.dev.log.filter((l) => l.startsWith('read')).map((l) => l.split(' ')[2]);
  assert.deepEqual(
    reads,
    Array.from({ length: 10 }, (_, i) => `${i * 64}+64`),
  );
  const firstWait = r.dev.log.findIndex((l) => l.startsWith('wait'));
  assert.equal(firstWait, 3, 'the first wait comes when the fourth chunk needs the first slot back');
  assert.deepEqual(
    r.dev.log.filter((l) => l.startsWith('wait')),
    ['wait 1', 'wait 2', 'wait 3', 'wait 1', 'wait 2', 'wait 3', 'wait 1'],
    'slots 1, 2, 3 taken back in turn, each after its own event',
  );
});

test('conversions on the device equal the host path bit for bit: f32 and f16 to bf16, bf16 to f16, transposed', () => {
  const cases: Case[] = [
    { name: 'f32', shape: [9, 7], from: 'f32' },
    { name: 'f16', shape: [5, 11], from: 'f16' },
    { name: 'bf16 transposed', shape: [6, 5], from: 'bf16', transpose: true },
    { name: 'f32 transposed', shape: [13, 3], from: 'f32', transpose: true },
    { name: 'norm', shape: [17], from: 'f32' },
  ];
  for (const to of ['bf16', 'f16', 'f32'] as const) {
    for (const slotBytes of [30, 64, 4096]) {
      const r = uploadAll(cases, to, 3, slotBytes);
      assertArrived(r);
      assert.ok(r.dev.freedStaging > 0 && r.dev.freedStaging <= 3, 'device staging, one per slot used, freed');
    }
  }
});

test('a small upload takes one pinned slot, not the whole ring', () => {
  const dev = new LazyStream();
  const ring = new WeightUploader(dev, dev.newEvent, dev.convert, { slots: 3, slotBytes: 1 << 20 });
  const bytes = stored('bf16', values(100, 1));
  ring.upload(lazy(dev, 'w', [100], 'bf16', bytes), dev.alloc(200), 'bf16', false);
  assert.equal(dev.hosts.size, 1);
  ring.finish();
  assert.equal(dev.hosts.size, 0);
});

test('the layout: bytes as stored when the dtype matches, else a conversion on stored elements; errors in one line', () => {
  assert.deepEqual(weightLayout({ name: 'w', shape: [2, 3], dtype: 'bf16' }, 'bf16', false), {
    conversion: null,
    unit: 2,
  });
  assert.deepEqual(weightLayout({ name: 'w', shape: [2, 3], dtype: 'f32' }, 'bf16', true), {
    conversion: { srcType: 0, dstType: 2, rows: 2, cols: 3, transpose: 1 },
    unit: 4,
  });
  assert.throws(
    () => weightLayout({ name: 'b', shape: [3], dtype: 'f16' }, 'bf16', true),
    /^Error: b: only a 2-D weight can be transposed, shape \[3\]$/,
  );
  assert.throws(
    () => weightLayout({ name: 'q', shape: [32], dtype: 'q8_0' }, 'bf16', false),
    /q: q8_0 values have no conversion/,
  );
});

test('quantized blocks go through the ring as stored: the asked-for bytes at their offset, read from the file in chunks', () => {
  const dev = new LazyStream();
  const ring = new WeightUploader(dev, dev.newEvent, dev.convert, { slots: 2, slotBytes: 48 });
  const rnd = mulberry32(9);
  const blocks = Uint8Array.from({ length: 170 }, () => Math.floor(rnd() * 256));
  const w = new LazyHostTensor('blk.0.attn_q.weight', [5, 32], 'q8_0', blocks.length, (dst, from) => {
    assert.ok(!dev.pendingReadOf(dst), `bytes [${from}, ${from + dst.length}) overwrite a slot still copying`);
    dev.log.push(`read ${from}+${dst.length}`);
    dst.set(blocks.subarray(from, from + dst.length));
  });
  const ptr = dev.alloc(200);
  dev.device.fill(0xee, Number(ptr), Number(ptr) + 200);
  ring.uploadStored(w, ptr, 136);
  const stats = ring.finish();
  assert.deepEqual(dev.device.subarray(Number(ptr), Number(ptr) + 136), blocks.subarray(0, 136));
  assert.ok(
    dev.device.subarray(Number(ptr) + 136, Number(ptr) + 200).every((b) => b === 0xee),
    'nothing past them',
  );
  assert.deepEqual(stats.bytes, 136);
  assert.deepEqual(
    dev.log.filter((l) => l.startsWith('read')),
    ['read 0+48', 'read 48+48', 'read 96+40'],
  );
});

test('each tensor starts 16-byte aligned in its slot, so a conversion never reads f32 values at an odd offset', () => {
  const dev = new LazyStream();
  const jobs: ConvertJob[] = [];
  const convert = (j: ConvertJob) => {
    jobs.push(j);
    dev.convert(j);
  };
  const ring = new WeightUploader(dev, dev.newEvent, convert, { slots: 2, slotBytes: 96 });
  const cases: Case[] = [
    { name: 'odd16', shape: [3], from: 'bf16' },
    { name: 'f32', shape: [5], from: 'f32' },
    { name: 'odd16b', shape: [7], from: 'bf16' },
    { name: 'f32b', shape: [2, 3], from: 'f32' },
  ];
  const placed = cases.map((c, i) => {
    const n = c.shape.reduce((a, d) => a * d, 1);
    const bytes = stored(c.from, values(n, i + 1));
    const ptr = dev.alloc(n * 2);
    ring.upload(lazy(dev, c.name, c.shape, c.from, bytes), ptr, 'bf16', false);
    return { c, ptr, expected: hostBytesAs({ name: c.name, shape: c.shape, dtype: c.from, bytes }, 'bf16', false) };
  });
  const stats = ring.finish();
  assertArrived({ dev, placed, stats });
  assert.equal(jobs.length, 2, 'the two f32 tensors converted on the device');
  for (const j of jobs) assert.equal(Number(j.in) % 16, 0, `staged at ${j.in}`);
});
