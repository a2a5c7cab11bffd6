import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeSafetensors, openSafetensors } from '../../src/loader/safetensors.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { LazyHostTensor } from '../../src/primitives/lazy-tensor.ts';

function folderWith(bytes: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-st-'));
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  return dir;
}

test('round-trips tensors and reads them lazily by name', () => {
  const a = new Float32Array([1, -2, 3.5, 4, 5, 6]);
  const dir = folderWith(encodeSafetensors([{ name: 'a', shape: [2, 3], data: a }]));
  const src = openSafetensors(dir);
  assert.deepEqual(src.names(), ['a']);
  const t = src.get('a');
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual([...toFloat32(t)], [...a]);
  src.close();
});

test('converts bf16 and f16 to float32', () => {
  const bf16 = { name: 'x', shape: [2], dtype: 'bf16' as const, bytes: new Uint8Array([0x80, 0x3f, 0x00, 0xc0]) };
  assert.deepEqual([...toFloat32(bf16)], [1, -2]);
  const f16 = { name: 'y', shape: [2], dtype: 'f16' as const, bytes: new Uint8Array([0x00, 0x3c, 0x00, 0xb8]) };
  assert.deepEqual([...toFloat32(f16)], [1, -0.5]);
});

test('a header length past the end of the file names the file and both sizes', () => {
  const buf = Buffer.alloc(16);
  buf.writeBigUInt64LE(1000n);
  const dir = folderWith(buf);
  assert.throws(
    () => openSafetensors(dir),
    /model\.safetensors: header length 1000 runs past the end of the file \(16 bytes\)/,
  );
});

test('a truncated data section names the tensor', () => {
  const full = encodeSafetensors([{ name: 'w', shape: [4], data: new Float32Array(4) }]);
  const dir = folderWith(full.subarray(0, full.length - 4));
  assert.throws(() => openSafetensors(dir), /tensor w ends at byte \d+, past the end of the file/);
});

test('bad header JSON and unsupported dtypes are one-line errors', () => {
  const json = Buffer.from('{not json');
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  assert.throws(() => openSafetensors(folderWith(Buffer.concat([head, json]))), /header is not valid JSON/);
  const hdr = Buffer.from(JSON.stringify({ q: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } }));
  const head2 = Buffer.alloc(8);
  head2.writeBigUInt64LE(BigInt(hdr.length));
  const dir = folderWith(Buffer.concat([head2, hdr, Buffer.alloc(1)]));
  assert.throws(() => openSafetensors(dir), /tensor q has dtype I8, expected one of F32, F16, BF16/);
});

test('F8_E4M3 tensors are read as stored; get() refuses them, since only a checkpoint config gives their scales', () => {
  const hdr = Buffer.from(JSON.stringify({ w: { dtype: 'F8_E4M3', shape: [2, 2], data_offsets: [0, 4] } }));
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(hdr.length));
  const src = openSafetensors(folderWith(Buffer.concat([head, hdr, Buffer.from([0x38, 0xc0, 0x00, 0x7e])])));
  assert.equal(src.describe('w').dtype, 'f8_e4m3');
  assert.deepEqual([...src.stored('w').bytes], [0x38, 0xc0, 0x00, 0x7e]);
  assert.throws(() => src.get('w'), /tensor w is F8_E4M3, but config\.json has no FP8 quantization_config/);
  src.close();
});

test('a tensor from get() reads its bytes lazily: any range, and the whole, equal what stored() reads', () => {
  const a = new Float32Array(Array.from({ length: 37 }, (_, i) => i * 1.25 - 9));
  const b = new Float32Array([7, 8, 9]);
  const dir = folderWith(
    encodeSafetensors([
      { name: 'a', shape: [37], data: a },
      { name: 'b', shape: [3], data: b },
    ]),
  );
  const src = openSafetensors(dir);
  for (const name of ['a', 'b']) {
    const stored = src.stored(name).bytes;
    const t = src.get(name) as LazyHostTensor;
    assert.ok(t instanceof LazyHostTensor);
    assert.equal(t.byteLength, stored.byteLength);
    const part = new Uint8Array(Math.min(11, stored.length - 1));
    t.readInto(part, 1);
    assert.deepEqual(part, stored.subarray(1, 1 + part.length), `${name}: a range from byte 1`);
    assert.deepEqual(t.bytes, stored, `${name}: the whole`);
  }
  const late = src.get('a');
  src.close();
  assert.throws(() => late.bytes, /model\.safetensors: tensor a read after its file was closed/);
});
