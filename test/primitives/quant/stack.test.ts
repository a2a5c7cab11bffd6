import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor } from '../../../src/primitives/host-tensor.ts';
import { quantStackGroups, readGroupBlocks } from '../../../src/primitives/quant/stack.ts';

const host = (name: string, dtype: HostTensor['dtype'], rows: number, cols = 256): HostTensor => ({
  name,
  shape: [rows, cols],
  dtype,
  bytes: new Uint8Array(0),
});

test('a stacked weight keeps one group per run of a type, rows and row bytes of that type', () => {
  const groups = quantStackGroups([host('q', 'q4_k', 64), host('k', 'q4_k', 16), host('v', 'q6_k', 16)]);
  assert.deepEqual(
    groups.map((g) => [g.type, g.rows, g.rowBytes, g.hosts.map((h) => h.name)]),
    [
      ['q4_k', 80, 144, ['q', 'k']],
      ['q6_k', 16, 210, ['v']],
    ],
  );
  // A type that comes back after another is a new run: parts stay in row order.
  const abc = quantStackGroups([host('a', 'q8_0', 2), host('b', 'q4_0', 2), host('c', 'q8_0', 2)]);
  assert.deepEqual(
    abc.map((g) => [g.type, g.rows, g.rowBytes]),
    [
      ['q8_0', 2, 8 * 34],
      ['q4_0', 2, 8 * 18],
      ['q8_0', 2, 8 * 34],
    ],
  );
});

test('stacking refuses float, 1-D, other widths and rows that are not whole blocks; blocks are checked', () => {
  assert.throws(() => quantStackGroups([host('a', 'q8_0', 2), host('b', 'bf16', 2)]), /b: \[2,256\] bf16 cannot/);
  assert.throws(() => quantStackGroups([host('a', 'q8_0', 2), host('b', 'q8_0', 2, 512)]), /b: \[2,512\] q8_0/);
  assert.throws(() => quantStackGroups([host('a', 'q4_k', 2, 96)]), /a: 96 values are not a whole number of q4_k/);
  const [g] = quantStackGroups([{ ...host('w', 'q8_0', 2, 32), bytes: new Uint8Array(70) }]);
  const stored = Uint8Array.from({ length: 70 }, (_, i) => i + 1);
  const dst = new Uint8Array(72);
  assert.equal(readGroupBlocks({ ...host('w', 'q8_0', 2, 32), bytes: stored }, g!, dst), 68);
  assert.deepEqual(
    dst,
    Uint8Array.from({ length: 72 }, (_, i) => (i < 68 ? i + 1 : 0)),
    'the blocks, nothing past them',
  );
  const short = { ...host('w', 'q8_0', 2, 32), bytes: new Uint8Array(67) };
  assert.throws(() => readGroupBlocks(short, g!, dst), /w: q8_0 needs 68/);
});
