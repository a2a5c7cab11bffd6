import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeScratch } from '../../src/backend/cuda/decode-scratch.ts';
import type { DecodeWorkspace } from '../../src/backend/cuda/flash-attention.ts';

/** A scratch over a fake allocator that remembers each allocation's size; steps hold up to `capacity` sequences. */
function scratch(capacity: number) {
  const sizes = new Map<bigint, number>();
  let next = 0x1000n;
  const s = new DecodeScratch(
    (bytes) => {
      next += 0x100000n;
      sizes.set(next, bytes);
      return next;
    },
    () => capacity,
  );
  return { s, sizes };
}

/** Throws unless `ws` holds every split's partials of `numSeqs` sequences of `numHeads` heads of `headDim`. */
function assertHolds(
  sizes: Map<bigint, number>,
  ws: DecodeWorkspace,
  numSeqs: number,
  { numHeads, headDim }: { numHeads: number; headDim: number },
) {
  const rows = numSeqs * numHeads * ws.maxSplits;
  assert.ok(sizes.get(ws.partialO)! >= rows * headDim * 4, `partial O for ${numSeqs} x ${numHeads} x ${headDim}`);
  assert.ok(sizes.get(ws.partialLse)! >= rows * 4, `partial LSE for ${numSeqs} x ${numHeads}`);
}

test("a model's layers, sliding or full, share one scratch sized for the step capacity", () => {
  const { s, sizes } = scratch(64);
  // Gemma 2/3: sliding and full layers differ in their window, not in heads or head size.
  const full = { numHeads: 16, headDim: 256, slidingWindow: 0 };
  const sliding = { ...full, slidingWindow: 4096 };
  const ws = s.get(3, sliding);
  assertHolds(sizes, ws, 64, full);
  for (const spec of [full, sliding, full]) assert.equal(s.get(64, spec), ws, 'the same scratch, no allocation');
  assert.equal(sizes.size, 2);
});

test('a wider attention on the same backend (a draft model beside its target) gets a scratch that holds it', () => {
  for (const [first, second] of [
    [
      { numHeads: 8, headDim: 64 },
      { numHeads: 32, headDim: 64 },
    ],
    [
      { numHeads: 32, headDim: 64 },
      { numHeads: 16, headDim: 128 },
    ],
  ]) {
    const { s, sizes } = scratch(16);
    const small = s.get(16, first!);
    const wide = s.get(16, second!);
    assertHolds(sizes, wide, 16, second!);
    assert.notEqual(wide, small);
    // The first model's shape still fits, in the grown scratch; the outgrown one is kept for graphs captured over it.
    assert.equal(s.get(16, first!), wide);
    assertHolds(sizes, wide, 16, first!);
    assert.equal(sizes.size, 4, 'nothing freed, nothing else allocated');
  }
});

test('more sequences than the capacity grows the scratch and keeps the widest attention seen', () => {
  const { s, sizes } = scratch(8);
  const wide = { numHeads: 32, headDim: 128 };
  s.get(8, wide);
  const grown = s.get(20, { numHeads: 8, headDim: 64 });
  assertHolds(sizes, grown, 20, wide);
  assert.equal(s.get(20, wide), grown);
});
