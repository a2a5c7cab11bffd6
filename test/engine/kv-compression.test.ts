import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/engine.ts';
import { Rng } from '../../src/engine/sequence.ts';
import { selectKeys } from '../../src/models/kv-compression.ts';
import { snapKvWindow } from '../../src/primitives/kv-compression.ts';
import { assertAllBlocksFree, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';
import { fakeKeyScore, referenceLogits } from '../helpers/fake-model.ts';

const VOCAB = 64;
const snapkv = { method: 'snapkv' as const };

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

function randomPrompt(seed: number, len: number): number[] {
  const rng = new Rng(seed, 0);
  return Array.from({ length: len }, () => 1 + Math.floor(rng.next() * (VOCAB - 1)));
}

/** The positions a prompt keeps under `budget`: what `selectKeys` picks from the fake model's scores. */
function keptPositions(prompt: number[], budget: number): number[] {
  const window = snapKvWindow(budget, Number.POSITIVE_INFINITY);
  const keys = prompt.length - window;
  const scores = Float32Array.from({ length: keys }, (_, j) => fakeKeyScore(prompt[j]!, j));
  return [...selectKeys(scores, [{ seq: 0, window, budget }], Int32Array.from([prompt.length]), 1)];
}

/**
 * Greedy decoding with the prompt compressed: the first token from the whole prompt (the prefill reads it all), the
 * rest from the kept prompt tokens followed by the generated ones.
 */
function refCompressed(prompt: number[], budget: number | null, maxTokens: number): number[] {
  const out = [argmax(referenceLogits(prompt, VOCAB))];
  const ctx = budget === null ? [...prompt] : keptPositions(prompt, budget).map((j) => prompt[j]!);
  ctx.push(out[0]!);
  while (out.length < maxTokens) {
    out.push(argmax(referenceLogits(ctx, VOCAB)));
    ctx.push(out.at(-1)!);
  }
  return out;
}

const greedy = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

/** Every block is free or owned by exactly the running sequences' tables (no leak, no double owner). */
function assertBlocksOwned(engine: Engine): void {
  const owners = new Map<number, number>();
  for (const r of engine.scheduler.running) {
    for (const s of r.seqs) for (const b of s.blockTable) owners.set(b, (owners.get(b) ?? 0) + 1);
  }
  for (let b = 0; b < engine.blocks.numBlocks; b++)
    assert.equal(engine.blocks.refCountOf(b), owners.get(b) ?? 0, `block ${b}`);
  assert.equal(engine.blocks.numFree, engine.blocks.numBlocks - owners.size);
}

test('a compressed prompt keeps exactly its budget: blocks freed, entries at their true positions, outputs as the reference', () => {
  const engine = fakeEngine({ kvCompression: { ...snapkv, budget: 14 }, numBlocks: 32, blockSize: 4 });
  const prompt = randomPrompt(1, 41);
  const got = submit(engine, { prompt, params: greedy(9) });
  engine.step(); // the whole prompt in one chunk, then compaction
  const seq = engine.scheduler.running[0]!.seqs[0]!;
  assert.equal(seq.numComputed, 41);
  assert.equal(seq.cachedLen, 14);
  assert.equal(seq.blockTable.length, 4, 'ceil(14 / 4) blocks');
  assert.equal(engine.stats().kvBlocksSaved, 11 - 4);
  assertBlocksOwned(engine);
  engine.step();
  engine.step();
  // Two generated tokens went to entries 14 and 15 at positions 41 and 42.
  const runner = engine.config.runner as unknown as { positions: Int32Array };
  const positions = Array.from({ length: 16 }, (_, e) => runner.positions[seq.blockTable[e >> 2]! * 4 + (e % 4)]);
  assert.deepEqual(positions, [...keptPositions(prompt, 14), 41, 42]);
  assertBlocksOwned(engine);
  runToEnd(engine);
  assert.deepEqual(got.tokenIds[0], refCompressed(prompt, 14, 9));
  assert.notDeepEqual(got.tokenIds[0], refCompressed(prompt, null, 9), 'compression changed what the model sees');
  assertAllBlocksFree(engine);
});

test('a budget as a fraction, chunked prefill, and a per-request budget over the engine one', () => {
  const engine = fakeEngine({
    kvCompression: { ...snapkv, budget: 0.5 },
    scheduler: { maxNumBatchedTokens: 8, maxNumSeqs: 4, policy: 'fcfs' },
  });
  const a = randomPrompt(2, 37);
  const b = randomPrompt(3, 30);
  const ga = submit(engine, { prompt: a, params: greedy(6) });
  const gb = submit(engine, { prompt: b, params: greedy(6), kvBudget: 12 });
  runToEnd(engine);
  assert.deepEqual(ga.tokenIds[0], refCompressed(a, 19, 6), 'ceil(0.5 * 37) entries');
  assert.deepEqual(gb.tokenIds[0], refCompressed(b, 12, 6));
  assertAllBlocksFree(engine);
});

test('golden outputs are unchanged when the budget is not below the prompt', () => {
  const prompt = randomPrompt(4, 20);
  const plain = fakeEngine();
  const want = submit(plain, { prompt, params: greedy(8) });
  runToEnd(plain);
  const engine = fakeEngine({ kvCompression: { ...snapkv, budget: 20 } });
  const got = submit(engine, { prompt, params: greedy(8) });
  const alsoGot = submit(engine, { prompt, params: greedy(8), kvBudget: 64 });
  runToEnd(engine);
  assert.deepEqual(got.tokenIds[0], want.tokenIds[0]);
  assert.deepEqual(alsoGot.tokenIds[0], want.tokenIds[0]);
  assert.equal(engine.stats().kvBlocksSaved, 0);
  assertAllBlocksFree(engine);
});

test('a preempted compressed request is recomputed (prefill, compression, then its tokens) with unchanged outputs', () => {
  const engine = fakeEngine({
    kvCompression: { ...snapkv, budget: 10 },
    numBlocks: 16,
    blockSize: 4,
    scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 8, policy: 'fcfs' },
  });
  const prompts = [1, 2, 3].map((s) => randomPrompt(10 + s, 30));
  const got = prompts.map((prompt) => submit(engine, { prompt, params: greedy(16) }));
  runToEnd(engine);
  assert.ok(engine.stats().preemptions > 0, 'expected preemptions in 16 blocks');
  for (const [i, p] of prompts.entries())
    assert.deepEqual(got[i]!.tokenIds[0], refCompressed(p, 10, 16), `request ${i}`);
  assertAllBlocksFree(engine);
});

test('compressed sequences are not offered to the prefix cache, and compaction copies the cached blocks it takes', () => {
  const engine = fakeEngine({ kvCompression: snapkv, numBlocks: 64, blockSize: 4 });
  const prompt = randomPrompt(5, 40);
  const compressed = submit(engine, { prompt, params: greedy(4), kvBudget: 12 });
  runToEnd(engine);
  const after = submit(engine, { prompt, params: greedy(4) });
  runToEnd(engine);
  assert.equal(after.outputs.at(-1)!.metrics.cachedPromptTokens, 0, 'no hit on a compressed sequence');
  assert.deepEqual(compressed.tokenIds[0], refCompressed(prompt, 12, 4));
  assert.deepEqual(after.tokenIds[0], refCompressed(prompt, null, 4));

  // `after` registered its blocks: a compressing request takes them, compacts copies, and leaves them intact.
  const again = submit(engine, { prompt, params: greedy(4), kvBudget: 12 });
  runToEnd(engine);
  assert.ok(again.outputs.at(-1)!.metrics.cachedPromptTokens > 0, 'the compressing request took the cached prefix');
  assert.deepEqual(again.tokenIds[0], refCompressed(prompt, 12, 4));
  const last = submit(engine, { prompt, params: greedy(4) });
  runToEnd(engine);
  assert.equal(last.outputs.at(-1)!.metrics.cachedPromptTokens, 36);
  assert.deepEqual(last.tokenIds[0], refCompressed(prompt, null, 4), 'the cached blocks were not written');
  assertAllBlocksFree(engine);
});

test('n = 3 forks share the compacted blocks; a request without KV compression cannot ask for it', () => {
  const engine = fakeEngine({ kvCompression: { ...snapkv, budget: 12 } });
  const prompt = randomPrompt(6, 33);
  const got = submit(engine, { prompt, params: { ...greedy(7), n: 3 } });
  runToEnd(engine);
  for (let i = 0; i < 3; i++) assert.deepEqual(got.tokenIds[i], refCompressed(prompt, 12, 7));
  assertAllBlocksFree(engine);
  assert.throws(
    () => submit(fakeEngine(), { prompt, kvBudget: 8 }),
    /kv_budget: this model runs without KV compression/,
  );
  for (const bad of [0, -1, 2.5, Number.NaN]) {
    assert.throws(() => submit(engine, { prompt, kvBudget: bad }), /kv_budget: .* is not a KV budget/);
  }
});
