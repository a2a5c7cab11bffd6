import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type GgufValue, gguf } from '../../../src/loader/gguf/format.ts';
import { GgufFile, hasGgufMagic } from '../../../src/loader/gguf/read.ts';
import { encodeGguf, writeGguf } from '../../../src/loader/gguf/write.ts';
import { toFloat32 } from '../../../src/primitives/host-tensor.ts';
import { LazyHostTensor } from '../../../src/primitives/lazy-tensor.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { sharedFixture } from '../../helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pagoda-gguf-'));
let n = 0;
function fileWith(bytes: Uint8Array): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, bytes);
  return path;
}

const f32 = (name: string, shape: number[], values: number[]) => ({
  name,
  shape,
  dtype: 'f32' as const,
  bytes: new Uint8Array(new Float32Array(values).buffer),
});

const EVERY_TYPE = new Map<string, GgufValue>([
  ['general.architecture', gguf.str('llama')],
  ['a.u8', { type: 'u8', value: 250 }],
  ['a.i8', { type: 'i8', value: -7 }],
  ['a.u16', { type: 'u16', value: 65000 }],
  ['a.i16', { type: 'i16', value: -30000 }],
  ['a.u32', gguf.u32(4_000_000_000)],
  ['a.i32', gguf.i32(-2_000_000_000)],
  ['a.f32', gguf.f32(0.5)],
  ['a.bool', gguf.bool(true)],
  ['a.string', gguf.str('héllo ▁ world')],
  ['a.u64', { type: 'u64', value: 2 ** 40 }],
  ['a.i64', { type: 'i64', value: -(2 ** 40) }],
  ['a.f64', { type: 'f64', value: Math.PI }],
  ['a.big', { type: 'u64', value: 2n ** 63n }],
  ['a.strings', gguf.array('string', ['a', '', 'ü'])],
  ['a.ints', gguf.array('i32', [1, -2, 3])],
  ['a.floats', gguf.array('f32', [0.25, -1])],
]);

test('every metadata value type and tensors round-trip through the writer and the reader', () => {
  const rnd = mulberry32(1);
  const w = Array.from({ length: 6 }, () => rnd());
  const q = { name: 'q', shape: [2, 32], dtype: 'q8_0' as const, bytes: Uint8Array.from({ length: 68 }, (_, i) => i) };
  const path = fileWith(encodeGguf(EVERY_TYPE, [f32('w', [2, 3], w), q, f32('b', [3], [1, 2, 3])]));
  assert.equal(hasGgufMagic(path), true);
  const file = GgufFile.open(path);
  assert.equal(file.version, 3);
  assert.deepEqual(file.metadata, EVERY_TYPE);
  assert.deepEqual([...file.tensors.keys()], ['w', 'q', 'b']);
  assert.deepEqual(file.tensors.get('w')!.dims, [3, 2]);
  for (const t of file.tensors.values()) assert.equal(t.offset % 32, 0);
  const back = file.readTensor('w');
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual([...toFloat32(back)], [...new Float32Array(w)]);
  assert.deepEqual({ ...file.readTensor('q') }, q);
  assert.deepEqual([...toFloat32(file.readTensor('b'))], [1, 2, 3]);
  file.close();
});

test('writeGguf streams the same bytes as encodeGguf, with general.alignment honoured', () => {
  const meta = new Map<string, GgufValue>([['general.alignment', gguf.u32(64)]]);
  const tensors = [f32('x', [5], [1, 2, 3, 4, 5]), f32('y', [1], [9])];
  const path = join(dir, 'streamed.gguf');
  writeGguf(
    path,
    meta,
    tensors.map((t) => ({ ...t, bytes: () => t.bytes })),
  );
  assert.deepEqual(readFileSync(path), encodeGguf(meta, tensors));
  const file = GgufFile.open(path);
  assert.equal(file.alignment, 64);
  assert.equal(file.tensors.get('y')!.offset - file.tensors.get('x')!.offset, 64);
  assert.deepEqual([...toFloat32(file.readTensor('y'))], [9]);
  file.close();
});

test('a header that grows past its buffer at every offset keeps every value (strings, u32, u64)', () => {
  // The writer's buffer starts at 64 KiB and doubles; strings of every length mod 8 put each kind of write across
  // the boundary.
  for (let pad = 0; pad < 8; pad++) {
    const words = Array.from({ length: 9000 }, (_, i) => 'w'.repeat(1 + ((i + pad) % 8)));
    const meta = new Map<string, GgufValue>([
      ['t.words', gguf.array('string', words)],
      ['t.n', gguf.u32(7)],
      ['t.big', { type: 'u64', value: 2n ** 63n }],
    ]);
    const file = GgufFile.open(fileWith(encodeGguf(meta, [])));
    assert.deepEqual(file.metadata, meta);
    file.close();
  }
});

test('GGUF v2 files are read (same layout as v3)', () => {
  const bytes = encodeGguf(new Map([['k', gguf.u32(7)]]), [f32('x', [2], [1, 2])]);
  bytes.writeUInt32LE(2, 4);
  const file = GgufFile.open(fileWith(bytes));
  assert.equal(file.version, 2);
  assert.equal(file.value('k'), 7);
  file.close();
});

const valid = () => encodeGguf(new Map([['general.name', gguf.str('x')]]), [f32('t', [4], [1, 2, 3, 4])]);

test('hostile files are refused with one line naming the file', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['wrong magic', Buffer.from('GGML0000000000000000000000'), /: not a GGUF file/],
    ['empty file', Buffer.alloc(0), /: not a GGUF file/],
    ['version 1', Object.assign(valid(), {}).fill(1, 4, 5).fill(0, 5, 8), /GGUF version 1 is not supported/],
    ['truncated header', valid().subarray(0, 70), /GGUF header truncated: tensor t's dimensions needs 8 bytes/],
    [
      'tensor past the end',
      valid().subarray(0, valid().length - 20),
      /tensor t ends at byte \d+, past the end of the file/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    const path = fileWith(bytes);
    assert.throws(
      () => GgufFile.open(path),
      (e: Error) => re.test(e.message) && e.message.startsWith(path) && !e.message.includes('\n'),
      what,
    );
  }
  const b = valid();
  const typePos = b.indexOf(Buffer.from('t')) + 1 + 4 + 8; // name, n_dims, one dim
  b.writeUInt32LE(99, typePos);
  assert.throws(() => GgufFile.open(fileWith(b)), /tensor t has unknown ggml type id 99/);
  const counts = valid();
  counts.writeBigUInt64LE(2n ** 40n, 8);
  assert.throws(
    () => GgufFile.open(fileWith(counts)),
    /claims 1099511627776 tensors .* more than a \d+-byte file can hold/,
  );
  const longString = valid();
  longString.writeBigUInt64LE(2n ** 50n, 24); // the first key's length
  assert.throws(() => GgufFile.open(fileWith(longString)), /metadata key claims \d+ bytes at byte 32, past the end/);
  const badValue = valid();
  badValue.writeUInt32LE(77, 24 + 8 + 'general.name'.length);
  assert.throws(() => GgufFile.open(fileWith(badValue)), /metadata general.name has unknown GGUF value type 77/);
});

test('a tensor of a type pagoda cannot load is refused naming the tensor and the type', () => {
  const b = valid();
  b.writeUInt32LE(16, b.indexOf(Buffer.from('t')) + 1 + 4 + 8); // IQ2_XXS, 256-value blocks: dims no longer fit
  assert.throws(() => GgufFile.open(fileWith(b)), /tensor t has dimensions \[4\], not whole IQ2_XXS blocks of 256/);
  const iq = encodeGguf(new Map(), [f32('t', [256], new Array(256).fill(0))]);
  iq.writeUInt32LE(16, iq.indexOf(Buffer.from('t')) + 1 + 4 + 8);
  const file = GgufFile.open(fileWith(iq));
  assert.throws(
    () => file.readTensor('t'),
    /tensor t is IQ2_XXS, which pagoda cannot load \(supported: F32, F16, Q4_0/,
  );
  file.close();
});

const stories = sharedFixture('gguf/stories260K.gguf');
test('stories260K.gguf: llama.cpp-written metadata and tensors', { skip: stories.skip }, () => {
  const file = GgufFile.open(stories.path);
  assert.equal(file.value('general.architecture'), 'llama');
  assert.equal(file.value('llama.embedding_length'), 64);
  assert.equal((file.value('tokenizer.ggml.tokens') as string[]).length, 512);
  const embd = file.readTensor('token_embd.weight');
  assert.deepEqual(embd.shape, [512, 64]);
  assert.equal(embd.dtype, 'f32');
  file.close();
});

test('a tensor reads its bytes lazily: any range, and the whole, equal readBytes, after close() too', () => {
  const rnd = mulberry32(5);
  const w = Array.from({ length: 45 }, () => rnd());
  const path = fileWith(encodeGguf(EVERY_TYPE, [f32('w', [5, 9], w), f32('b', [3], [1, 2, 3])]));
  const file = GgufFile.open(path);
  const whole = file.readBytes(file.tensors.get('w')!);
  const t = file.readTensor('w') as LazyHostTensor;
  assert.ok(t instanceof LazyHostTensor);
  file.close();
  const part = new Uint8Array(50);
  t.readInto(part, 13);
  assert.deepEqual(part, whole.subarray(13, 63));
  assert.deepEqual(t.bytes, whole);
  assert.deepEqual(file.tensorAt(file.tensors.get('b')!, 'model.bias').name, 'model.bias');
  file.close();
});

test('writeGguf refuses a missing folder or a folder as its output in one line, and leaves no .partial behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-gguf-out-'));
  const metadata = new Map<string, GgufValue>([['general.architecture', gguf.str('llama')]]);
  const missing = join(dir, 'absent', 'x.gguf');
  assert.throws(
    () => writeGguf(missing, metadata, []),
    new RegExp(
      `^UserError: ${missing}: the folder ${join(dir, 'absent')} does not exist \\(expected a GGUF file path to write\\)$`,
    ),
  );
  assert.throws(
    () => writeGguf(dir, metadata, []),
    new RegExp(`^UserError: ${dir}: is a folder \\(expected a GGUF file path to write\\)$`),
  );
  assert.deepEqual(readdirSync(dir), [], 'nothing written');
  assert.ok(!existsSync(`${dir}.partial`));
});
