import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockManager } from '../../src/engine/block-manager.ts';
import { Rng, Sequence } from '../../src/engine/sequence.ts';

const seq = (ids: number[]) => new Sequence([...ids], ids.length, { push: () => '' }, new Rng(0, 0));

/** Gives a sequence its cached prefix, then computes the rest of it. */
function computeAll(bm: BlockManager, s: Sequence): number {
  const cached = bm.takeCachedPrefix(s, bm.findCachedPrefix(s));
  const rest = s.tokenIds.length - s.numComputed;
  bm.allocate(s, rest);
  bm.markComputed(s, rest);
  return cached;
}

test('full blocks are found again by their chained hash, only for the same whole prefix', () => {
  const bm = new BlockManager(16, 4, true);
  const a = seq([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(computeAll(bm, a), 0);
  bm.free(a);
  assert.equal(bm.numFree, 16);
  assert.equal(computeAll(bm, seq([1, 2, 3, 4, 5, 6, 7, 8, 10])), 8);
  // The second block's tokens match but its parent does not: no hit.
  assert.equal(computeAll(bm, seq([0, 2, 3, 4, 5, 6, 7, 8, 9])), 0);
});

test('prefix caching off: nothing is registered or found', () => {
  const bm = new BlockManager(16, 4, false);
  const a = seq([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  computeAll(bm, a);
  bm.free(a);
  assert.equal(computeAll(bm, seq([1, 2, 3, 4, 5, 6, 7, 8, 9])), 0);
});

test('blocks without a hash are reused first; cached blocks are evicted oldest first, tail before head', () => {
  const bm = new BlockManager(5, 2, true);
  const a = seq([1, 2, 3, 4, 5]); // two full blocks + one partial
  computeAll(bm, a);
  bm.free(a);
  // One plain block (never hashed) plus the freed partial one are taken before any cached block.
  const b = seq([9, 9, 9]);
  bm.allocate(b, 3);
  bm.markComputed(b, 3);
  assert.equal(computeAll(bm, seq([1, 2, 3, 4, 7])), 4, 'both cached blocks survived');
});

test('eviction drops the tail of a freed prefix first', () => {
  const bm = new BlockManager(3, 2, true);
  const a = seq([1, 2, 3, 4, 5]);
  computeAll(bm, a);
  bm.free(a);
  const b = seq([8]);
  bm.allocate(b, 1); // the unhashed partial block
  const c = seq([9]);
  bm.allocate(c, 1); // must evict a cached block: the tail one ([3, 4])
  const d = seq([1, 2, 3, 4, 6]);
  assert.deepEqual(bm.findCachedPrefix(d).length, 1);
});

test('fork shares every block; the first write into a shared partial block copies it', () => {
  const bm = new BlockManager(8, 4, true);
  const parent = seq([1, 2, 3, 4, 5, 6]);
  computeAll(bm, parent);
  const child = seq([1, 2, 3, 4, 5, 6]);
  bm.fork(parent, child);
  assert.equal(bm.numUsed, 2);
  assert.equal(bm.refCountOf(parent.blockTable[1]!), 2);
  parent.tokenIds.push(7);
  child.tokenIds.push(8);
  assert.equal(bm.blocksNeeded(child, 1), 1);
  bm.allocate(child, 1);
  const copies = bm.takeCopies();
  assert.deepEqual(copies, [[parent.blockTable[1], child.blockTable[1]]]);
  assert.equal(bm.blocksNeeded(parent, 1), 0, 'the parent now owns its block alone');
  assert.equal(child.blockTable[0], parent.blockTable[0], 'the full block stays shared');
  bm.free(parent);
  bm.free(child);
  assert.equal(bm.numFree, 8);
});
