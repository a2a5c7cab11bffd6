import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DType, HostTensor } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { CudaEvent } from '../../src/backend/cuda/stream-event.ts';
import { cuda, DTYPE_BYTES, hostBytesAs } from '../../src/backend/cuda/tensor.ts';
import { launchConvert } from '../../src/backend/cuda/weight-convert.ts';
import { UPLOAD_SLOT_BYTES, WeightUploader } from '../../src/backend/cuda/weight-upload.ts';
import { bf16Bits, f16Bits } from '../../src/primitives/float-bits.ts';
import { LazyHostTensor } from '../../src/primitives/lazy-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const skip = gpuSkip();

/** Stored bytes of `n` values in `dtype`, with rounding ties, subnormals, half overflow and infinities among them. */
function storedBytes(n: number, dtype: DType, seed: number): Uint8Array {
  const rnd = mulberry32(seed);
  const special = [0, -0, 65504, 65520, 1e-8, -6.1e-5, 3.0e-41, 1 + 2 ** -8, 1 + 3 * 2 ** -9, Infinity, -Infinity];
  const v = Float32Array.from({ length: n }, (_, i) =>
    i < special.length ? special[i]! : (rnd() - 0.5) * 2 ** Math.floor(rnd() * 40 - 20),
  );
  if (dtype === 'f32') return new Uint8Array(v.buffer);
  return new Uint8Array(Uint16Array.from(v, dtype === 'bf16' ? bf16Bits : f16Bits).buffer);
}

/** A weight read lazily, as a checkpoint's is. */
function lazyWeight(name: string, shape: number[], dtype: DType, bytes: Uint8Array): HostTensor {
  return new LazyHostTensor(name, shape, dtype, bytes.length, (dst, from) =>
    dst.set(bytes.subarray(from, from + dst.length)),
  );
}

/** The device bytes at `ptr`, `n` of them. */
function download(b: CudaBackend, ptr: bigint, n: number): Buffer {
  const out = new Uint8Array(n);
  b.ctx.drv.download(out, ptr);
  return Buffer.from(out);
}

const CASES: { name: string; shape: number[]; from: DType; transpose?: boolean }[] = [
  { name: 'bf16', shape: [300, 257], from: 'bf16' },
  { name: 'f16', shape: [129, 77], from: 'f16' },
  { name: 'f32', shape: [211, 64], from: 'f32' },
  { name: 'norm f32', shape: [4099], from: 'f32' },
  { name: 'transposed f32 (Conv1D)', shape: [96, 131], from: 'f32', transpose: true },
  { name: 'transposed bf16', shape: [33, 70], from: 'bf16', transpose: true },
];

for (const to of ['bf16', 'f16', 'f32'] as const) {
  test(`weights through the upload ring equal the host path bit for bit (${to})`, { skip }, () => {
    const b = new CudaBackend({ dtype: to, graphs: false });
    // 4 KiB slots: every tensor crosses many chunk and slot boundaries, small ones share slots.
    const ring = new WeightUploader(
      b.ctx.drv,
      () => new CudaEvent(b.ctx.drv),
      (job) => launchConvert(b.ctx, job),
      { slots: 3, slotBytes: 4096 },
    );
    CASES.forEach((c, i) => {
      const n = c.shape.reduce((a, d) => a * d, 1);
      const bytes = storedBytes(n, c.from, i + 1);
      const host: HostTensor = { name: c.name, shape: c.shape, dtype: c.from, bytes };
      const expected = hostBytesAs(host, to, c.transpose === true);
      const words = Math.ceil(expected.length / 4);
      const ptr = b.ctx.drv.alloc(words * 4);
      b.ctx.drv.fill32(ptr, 0x7fa57fa5, words); // poisoned: a byte never written shows
      ring.upload(lazyWeight(c.name, c.shape, c.from, bytes), ptr, to, c.transpose === true);
      ring.finish();
      assert.deepEqual(download(b, ptr, expected.length), Buffer.from(expected), `${c.name} → ${to}`);
      b.ctx.drv.free(ptr);
    });
  });
}

test('loadWeight: a tensor larger than a slot and an f32 one converted arrive whole through the backend ring', {
  skip,
}, () => {
  const b = new CudaBackend({ dtype: 'bf16', graphs: false });
  const rows = Math.ceil((UPLOAD_SLOT_BYTES * 1.5) / (2 * 4096)) + 3;
  const big = storedBytes(rows * 4096, 'bf16', 7);
  const w = b.loadWeight(lazyWeight('big', [rows, 4096], 'bf16', big));
  const f32 = storedBytes(3 * 1000, 'f32', 8);
  const small = b.loadWeight(lazyWeight('small', [3, 1000], 'f32', f32));
  const stats = b.finishLoading();
  assert.equal(stats.bytes, big.length + f32.length);
  assert.deepEqual(download(b, cuda(w).ptr, big.length), Buffer.from(big));
  const want = hostBytesAs({ name: 's', shape: [3, 1000], dtype: 'f32', bytes: f32 }, 'bf16', false);
  assert.deepEqual(download(b, cuda(small).ptr, 3000 * DTYPE_BYTES.bf16), Buffer.from(want));
});
