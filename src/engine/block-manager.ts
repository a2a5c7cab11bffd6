import { createHash } from 'node:crypto';
import type { Sequence } from './sequence.ts';

/**
 * The paged KV cache's bookkeeping: fixed-size blocks, reference counts, per-sequence block tables.
 *
 * Automatic prefix caching: a full block's hash chains its parent's hash and its token ids. A computed full block is
 * registered under its hash; when its last owner frees it, it stays reusable (a later prompt with the same prefix
 * takes it back) until it is evicted, least recently freed first. Blocks that never held a hash are handed out first.
 *
 * Forked sequences (n > 1, beam search) share every block; the first write into a shared partial block copies it
 * (copy-on-write): the copy is queued in `takeCopies()` for the runner to perform before the step.
 *
 * KV compression: a sequence with a `kvBudget` never registers its blocks (compaction rewrites them). Before the step
 * that compacts it, its first blocks that others share or the prefix cache holds are copied (`prepareCompaction`);
 * after it, the blocks past its budget are freed (`compact`). Block math counts cache entries (`cachedLen`).
 */
export class BlockManager {
  private readonly refCount: Int32Array;
  private readonly hashOf: (string | null)[];
  /** Free blocks with no hash (stack). */
  private readonly plainFree: number[] = [];
  /** Free blocks still holding a hash, in eviction order (oldest first). */
  private readonly cachedFree = new Map<number, true>();
  /** hash -> block for every registered block, in use or free. */
  private readonly cached = new Map<string, number>();
  private copies: [number, number][] = [];
  prefixQueries = 0;
  prefixHits = 0;

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly prefixCaching: boolean,
  ) {
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Array(numBlocks).fill(null);
    for (let b = numBlocks - 1; b >= 0; b--) this.plainFree.push(b);
  }

  get numFree(): number {
    return this.plainFree.length + this.cachedFree.size;
  }

  /** Blocks currently in use by at least one sequence. */
  get numUsed(): number {
    return this.numBlocks - this.numFree;
  }

  refCountOf(block: number): number {
    return this.refCount[block]!;
  }

  /** Number of blocks to cover `tokens` tokens. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  /**
   * Blocks of the longest cached prefix of a sequence that has no blocks yet. At least the last token is always
   * left to compute, since its logits are needed.
   */
  findCachedPrefix(seq: Sequence): number[] {
    if (!this.prefixCaching) return [];
    const full = Math.floor((seq.tokenIds.length - 1) / this.blockSize);
    this.extendHashes(seq, full);
    const hit: number[] = [];
    for (let i = 0; i < full; i++) {
      const b = this.cached.get(seq.blockHashes[i]!);
      if (b === undefined) break;
      hit.push(b);
    }
    return hit;
  }

  /** Free blocks that taking `prefix` and then computing `numTokens` more tokens would consume. */
  blocksNeededToStart(prefix: readonly number[], numTokens: number): number {
    const fromFree = prefix.filter((b) => this.refCount[b] === 0).length;
    return fromFree + this.blocksFor(prefix.length * this.blockSize + numTokens) - prefix.length;
  }

  /** Gives a blockless sequence its cached prefix; returns the number of tokens served from the cache. */
  takeCachedPrefix(seq: Sequence, prefix: readonly number[]): number {
    if (seq.blockTable.length !== 0 || seq.numComputed !== 0) throw new Error('sequence already holds blocks');
    for (const b of prefix) this.incRef(b);
    seq.blockTable = [...prefix];
    seq.numComputed = prefix.length * this.blockSize;
    if (this.prefixCaching) {
      this.prefixQueries += seq.tokenIds.length;
      this.prefixHits += seq.numComputed;
    }
    return seq.numComputed;
  }

  /** Free blocks needed to compute `numTokens` more tokens of a sequence (new blocks plus a copy-on-write). */
  blocksNeeded(seq: Sequence, numTokens: number): number {
    const grow = Math.max(0, this.blocksFor(seq.cachedLen + numTokens) - seq.blockTable.length);
    return grow + (this.needsCopy(seq) ? 1 : 0);
  }

  /** Makes room for `numTokens` more tokens; the caller checked `blocksNeeded` against `numFree`. */
  allocate(seq: Sequence, numTokens: number): void {
    if (this.blocksNeeded(seq, numTokens) > this.numFree) throw new Error('allocate: not enough free blocks');
    if (this.needsCopy(seq)) this.copyBlock(seq, Math.floor(seq.cachedLen / this.blockSize));
    const want = this.blocksFor(seq.cachedLen + numTokens);
    while (seq.blockTable.length < want) seq.blockTable.push(this.takeFreeBlock());
  }

  /** Records that `numTokens` more tokens are in the cache and registers blocks that became full. */
  markComputed(seq: Sequence, numTokens: number): void {
    seq.numComputed += numTokens;
    if (!this.prefixCaching || seq.kvBudget !== null) return;
    const full = Math.floor(seq.numComputed / this.blockSize);
    this.extendHashes(seq, full);
    for (let i = 0; i < full; i++) {
      const b = seq.blockTable[i]!;
      if (this.hashOf[b] !== null) continue;
      const h = seq.blockHashes[i]!;
      if (this.cached.has(h)) continue; // the same content already sits in another block
      this.cached.set(h, b);
      this.hashOf[b] = h;
    }
  }

  /**
   * Gives back the blocks past the computed tokens: after speculative verification, those held only rejected draft
   * tokens (their slots in the last kept block are overwritten by the next step's tokens).
   */
  trim(seq: Sequence): void {
    const keep = this.blocksFor(seq.cachedLen);
    while (seq.blockTable.length > keep) this.decRef(seq.blockTable.pop()!);
  }

  /** The child shares all of the parent's blocks. */
  fork(parent: Sequence, child: Sequence): void {
    for (const b of parent.blockTable) this.incRef(b);
    child.blockTable = [...parent.blockTable];
    child.blockHashes = [...parent.blockHashes];
    child.numComputed = parent.numComputed;
    child.kvDropped = parent.kvDropped;
  }

  /**
   * Copies compaction would need for a sequence about to compact to `budget` entries: its blocks among the first
   * `blocksFor(budget)` that another sequence shares or the prefix cache holds (the partial block `allocate` copies
   * anyway aside). `prefixBlocks`: those of a cached prefix it has yet to take (all registered).
   */
  compactionCopies(seq: Sequence, budget: number, prefixBlocks = 0): number {
    const kept = this.blocksFor(budget);
    if (prefixBlocks > 0) return Math.min(prefixBlocks, kept);
    const partial = this.needsCopy(seq) ? Math.floor(seq.cachedLen / this.blockSize) : -1;
    let n = 0;
    for (let i = 0; i < Math.min(kept, seq.blockTable.length); i++) if (i !== partial && this.isShared(seq, i)) n++;
    return n;
  }

  /** After `allocate`: the blocks compaction will write become the sequence's own (copies queued). */
  prepareCompaction(seq: Sequence, budget: number): void {
    const kept = Math.min(this.blocksFor(budget), seq.blockTable.length);
    for (let i = 0; i < kept; i++) if (this.isShared(seq, i)) this.copyBlock(seq, i);
  }

  /** After the step compacted the sequence to `budget` entries: the blocks past them are freed; returns how many. */
  compact(seq: Sequence, budget: number): number {
    seq.kvDropped += seq.cachedLen - budget;
    let freed = 0;
    while (seq.blockTable.length > this.blocksFor(budget)) {
      this.decRef(seq.blockTable.pop()!);
      freed++;
    }
    return freed;
  }

  /** Releases a sequence's blocks (tail first, so the tail of a cached prefix is evicted before its head). */
  free(seq: Sequence): void {
    for (let i = seq.blockTable.length - 1; i >= 0; i--) this.decRef(seq.blockTable[i]!);
    seq.blockTable = [];
    seq.numComputed = 0;
    seq.kvDropped = 0;
  }

  /** Block copies (src, dst) queued by copy-on-write since the last call. */
  takeCopies(): [number, number][] {
    const c = this.copies;
    this.copies = [];
    return c;
  }

  private needsCopy(seq: Sequence): boolean {
    if (seq.cachedLen % this.blockSize === 0) return false;
    const b = seq.blockTable[Math.floor(seq.cachedLen / this.blockSize)];
    return b !== undefined && this.refCount[b]! > 1;
  }

  /** Block i of the sequence is another's too, or the prefix cache's (compaction must not write it). */
  private isShared(seq: Sequence, i: number): boolean {
    const b = seq.blockTable[i]!;
    return this.refCount[b]! > 1 || this.hashOf[b] !== null;
  }

  /** Block i of the sequence replaced by a copy of it (queued for the runner). */
  private copyBlock(seq: Sequence, i: number): void {
    const shared = seq.blockTable[i]!;
    const copy = this.takeFreeBlock();
    this.copies.push([shared, copy]);
    this.decRef(shared);
    seq.blockTable[i] = copy;
  }

  private extendHashes(seq: Sequence, fullBlocks: number): void {
    const bs = this.blockSize;
    for (let i = seq.blockHashes.length; i < fullBlocks; i++) {
      const h = createHash('sha256');
      if (i > 0) h.update(seq.blockHashes[i - 1]!);
      else if (seq.cacheSalt !== undefined) h.update(`salt:${seq.cacheSalt}\0`);
      h.update(new Uint8Array(Int32Array.from(seq.tokenIds.slice(i * bs, (i + 1) * bs)).buffer));
      seq.blockHashes.push(h.digest('base64'));
    }
  }

  private takeFreeBlock(): number {
    const plain = this.plainFree.pop();
    if (plain !== undefined) {
      this.refCount[plain] = 1;
      return plain;
    }
    const first = this.cachedFree.keys().next();
    if (first.done) throw new Error('no free KV blocks');
    const b = first.value;
    this.cachedFree.delete(b);
    // Evict: the block is about to hold other tokens.
    this.cached.delete(this.hashOf[b]!);
    this.hashOf[b] = null;
    this.refCount[b] = 1;
    return b;
  }

  private incRef(b: number): void {
    if (this.refCount[b] === 0) this.cachedFree.delete(b);
    this.refCount[b]!++;
  }

  private decRef(b: number): void {
    if (this.refCount[b]! <= 0) throw new Error(`block ${b} freed twice`);
    if (--this.refCount[b]! > 0) return;
    if (this.hashOf[b] !== null) this.cachedFree.set(b, true);
    else this.plainFree.push(b);
  }
}
