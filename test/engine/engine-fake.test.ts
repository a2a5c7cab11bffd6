import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logSoftmax } from '../../src/engine/sampling.ts';
import { Rng } from '../../src/engine/sequence.ts';
import { assertAllBlocksFree, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';
import { pieceOf, referenceLogits } from '../helpers/fake-model.ts';

const VOCAB = 64;

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

/** Greedy decoding of the fake model over a plain token list: what every engine run must reproduce. */
function refGreedy(prompt: number[], maxTokens: number, ignoreEos = false): number[] {
  const ctx = [...prompt];
  const out: number[] = [];
  while (out.length < maxTokens) {
    const t = argmax(referenceLogits(ctx, VOCAB));
    out.push(t);
    ctx.push(t);
    if (t === 0 && !ignoreEos) break;
  }
  return out;
}

function randomPrompt(rng: Rng, len: number): number[] {
  return Array.from({ length: len }, () => 1 + Math.floor(rng.next() * (VOCAB - 1)));
}

test('continuous batching with random arrivals and a tiny cache: preemptions happen, outputs match each alone', () => {
  const engine = fakeEngine({
    numBlocks: 24,
    blockSize: 4,
    scheduler: { maxNumBatchedTokens: 32, maxNumSeqs: 8, policy: 'fcfs' },
  });
  const rng = new Rng(11, 0);
  const reqs = Array.from({ length: 32 }, (_, i) => ({
    prompt: randomPrompt(rng, 1 + Math.floor(rng.next() * 40)),
    maxTokens: 1 + Math.floor(rng.next() * 30),
    arriveAt: Math.floor(rng.next() * 40),
    i,
  }));
  const results = new Map<number, ReturnType<typeof submit>>();
  for (let step = 0; results.size < reqs.length || engine.stats().running + engine.stats().waiting > 0; step++) {
    for (const r of reqs.filter((r) => r.arriveAt === step)) {
      results.set(r.i, submit(engine, { prompt: r.prompt, params: { temperature: 0, maxTokens: r.maxTokens } }));
    }
    engine.step();
    assert.ok(step < 5000);
  }
  for (const r of reqs) {
    const got = results.get(r.i)!;
    assert.ok(got.done);
    assert.deepEqual(got.tokenIds[0], refGreedy(r.prompt, r.maxTokens), `request ${r.i}`);
    assert.equal(got.text[0], refGreedy(r.prompt, r.maxTokens).map(pieceOf).join(''));
  }
  assert.ok(engine.stats().preemptions > 0, 'expected preemptions with 24 blocks');
  assertAllBlocksFree(engine);
});

test('a prompt sharing a cached prefix computes only its remainder; outputs equal with caching on and off', () => {
  const rng = new Rng(5, 0);
  const shared = randomPrompt(rng, 48);
  const first = [...shared, ...randomPrompt(rng, 3)];
  const second = [...shared, ...randomPrompt(rng, 10)];
  const outputs: number[][][] = [];
  for (const caching of [true, false]) {
    const engine = fakeEngine({ enablePrefixCaching: caching });
    const a = submit(engine, { prompt: first, params: { temperature: 0, maxTokens: 5, ignoreEos: true } });
    runToEnd(engine);
    const before = engine.stats().promptTokensComputed;
    const b = submit(engine, { prompt: second, params: { temperature: 0, maxTokens: 5, ignoreEos: true } });
    runToEnd(engine);
    const computed = engine.stats().promptTokensComputed - before;
    const cached = b.outputs.at(-1)!.metrics.cachedPromptTokens;
    if (caching) {
      assert.equal(cached, 48);
      assert.equal(computed, 10);
      assert.equal(engine.stats().prefixCacheHits, 48);
    } else {
      assert.equal(cached, 0);
      assert.equal(computed, 58);
    }
    assert.deepEqual(b.tokenIds[0], refGreedy(second, 5, true));
    outputs.push([a.tokenIds[0]!, b.tokenIds[0]!]);
    assertAllBlocksFree(engine);
  }
  assert.deepEqual(outputs[0], outputs[1]);
});

test('cache_salt: a salted prompt finds only blocks cached under the same salt; outputs unchanged', () => {
  const engine = fakeEngine();
  const prompt = randomPrompt(new Rng(21, 0), 40); // 4-token blocks: 36 tokens cacheable (the last is computed)
  const params = { temperature: 0, maxTokens: 3, ignoreEos: true };
  const cachedFor = (cacheSalt?: string) => {
    const r = submit(engine, { prompt, params, cacheSalt });
    runToEnd(engine);
    assert.deepEqual(r.tokenIds[0], refGreedy(prompt, 3, true));
    return r.outputs.at(-1)!.metrics.cachedPromptTokens;
  };
  assert.equal(cachedFor(), 0);
  // The unsalted blocks are not offered to a salted request, nor one salt's to another's.
  assert.equal(cachedFor('tenant-a'), 0);
  assert.equal(cachedFor('tenant-b'), 0);
  assert.equal(cachedFor('tenant-a'), 36);
  assert.equal(cachedFor('tenant-b'), 36);
  assert.equal(cachedFor(), 36);
  assertAllBlocksFree(engine);
});

test('a fully cached prompt still computes its last block to get logits', () => {
  const engine = fakeEngine();
  const prompt = randomPrompt(new Rng(9, 0), 16);
  submit(engine, { prompt, params: { temperature: 0, maxTokens: 2, ignoreEos: true } });
  runToEnd(engine);
  const again = submit(engine, { prompt, params: { temperature: 0, maxTokens: 2, ignoreEos: true } });
  runToEnd(engine);
  assert.equal(again.outputs.at(-1)!.metrics.cachedPromptTokens, 12);
  assert.deepEqual(again.tokenIds[0], refGreedy(prompt, 2, true));
  assertAllBlocksFree(engine);
});

test('aborts during prefill and during decode free every block', () => {
  const engine = fakeEngine({ scheduler: { maxNumBatchedTokens: 8, maxNumSeqs: 4, policy: 'fcfs' } });
  const rng = new Rng(3, 0);
  const prefill = submit(engine, { id: 'p', prompt: randomPrompt(rng, 40), params: { maxTokens: 10 } });
  const decode = submit(engine, { id: 'd', prompt: randomPrompt(rng, 3), params: { maxTokens: 50, ignoreEos: true } });
  engine.step();
  engine.step();
  assert.ok(engine.blocks.numUsed > 0);
  engine.abort('p'); // still prefilling: 40 tokens at 8 per step
  for (let i = 0; i < 5; i++) engine.step();
  assert.ok(decode.tokenIds[0]!.length > 0);
  engine.abort('d');
  assert.equal(prefill.finishReasons[0], 'abort');
  assert.equal(decode.finishReasons[0], 'abort');
  assert.ok(prefill.done && decode.done);
  assertAllBlocksFree(engine);
});

test('breaking out of generate() aborts the request', async () => {
  const engine = fakeEngine({ manual: false });
  let n = 0;
  for await (const out of engine.generate({ prompt: [1, 2, 3], params: { maxTokens: 100, ignoreEos: true } })) {
    assert.equal(out.finished, false);
    if (++n === 3) break;
  }
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('generate() streams through the background loop until finished', async () => {
  const engine = fakeEngine({ manual: false });
  const prompt = [5, 6, 7, 8, 9];
  const ids: number[] = [];
  let last = null;
  for await (const out of engine.generate({ prompt, params: { temperature: 0, maxTokens: 12, ignoreEos: true } })) {
    ids.push(...out.outputs[0]!.tokenIds);
    last = out;
  }
  assert.ok(last?.finished);
  assert.equal(last?.outputs[0]?.finishReason, 'length');
  assert.deepEqual(ids, refGreedy(prompt, 12, true));
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('n = 4 shares the prompt blocks and copies the shared partial block on write', () => {
  const engine = fakeEngine({ blockSize: 4 });
  const prompt = randomPrompt(new Rng(4, 0), 10); // blocks: 4 + 4 + 2 tokens
  const r = submit(engine, { prompt, params: { n: 4, temperature: 0, maxTokens: 6, ignoreEos: true } });
  engine.step(); // prefill, sample 4 tokens, fork
  assert.equal(engine.blocks.numUsed, 3, 'the 4 sequences share the prompt blocks');
  engine.step(); // each writes position 10 into the shared partial block: 3 copies
  assert.equal(engine.blocks.numUsed, 2 + 4);
  runToEnd(engine);
  const want = refGreedy(prompt, 6, true);
  for (let i = 0; i < 4; i++) assert.deepEqual(r.tokenIds[i], want, `completion ${i}`);
  assertAllBlocksFree(engine);
});

test('n = 4 sampled completions are independent streams and reproducible', () => {
  const run = () => {
    const engine = fakeEngine();
    const r = submit(engine, { prompt: [1, 2, 3, 4, 5], params: { n: 4, seed: 7, maxTokens: 8, ignoreEos: true } });
    runToEnd(engine);
    assertAllBlocksFree(engine);
    return r.tokenIds;
  };
  const a = run();
  assert.deepEqual(a, run());
  assert.equal(new Set(a.map((x) => x.join())).size, 4);
});

test('seeded sampling gives the same output whatever else is in the batch', () => {
  const req = {
    prompt: [3, 1, 4, 1, 5],
    params: { temperature: 0.9, topP: 0.95, seed: 1234, maxTokens: 20, ignoreEos: true },
  };
  const alone = fakeEngine();
  const a = submit(alone, req);
  runToEnd(alone);
  const busy = fakeEngine({ numBlocks: 20 });
  const rng = new Rng(1, 0);
  for (let i = 0; i < 6; i++) submit(busy, { prompt: randomPrompt(rng, 10 + i), params: { maxTokens: 15 } });
  busy.step();
  const b = submit(busy, req);
  for (let i = 0; i < 3; i++)
    submit(busy, { prompt: randomPrompt(rng, 7), params: { maxTokens: 9, temperature: 1.3 } });
  runToEnd(busy);
  assert.deepEqual(b.tokenIds[0], a.tokenIds[0]);
  assertAllBlocksFree(alone);
  assertAllBlocksFree(busy);
});

test('stop strings across token boundaries end generation and are never streamed', () => {
  const prompt = [7, 8, 9];
  const want = refGreedy(prompt, 30, true);
  const full = want.map(pieceOf).join('');
  // A stop string made of the last letter of one piece and the start of the next: it spans a token boundary.
  const k = want.findIndex((t, i) => i > 2 && pieceOf(t).length === 2 && pieceOf(want[i + 1] ?? 0).length > 0);
  const boundary = want
    .slice(0, k + 1)
    .map(pieceOf)
    .join('').length;
  const stop = full.slice(boundary - 1, boundary + 1);
  const expectText = full.slice(0, full.indexOf(stop));
  const engine = fakeEngine();
  const r = submit(engine, {
    prompt,
    params: { temperature: 0, maxTokens: 30, ignoreEos: true, stop: ['zzzz', stop] },
  });
  runToEnd(engine);
  assert.equal(r.text[0], expectText);
  for (const out of r.outputs) assert.ok(!out.outputs.some((d) => d.text.includes(stop)));
  const last = r.outputs.at(-1)!.outputs[0]!;
  assert.equal(last.finishReason, 'stop');
  assert.equal(last.stopReason, stop);
  assertAllBlocksFree(engine);
});

test('stop_token_ids, EOS, ignore_eos and min_tokens', () => {
  const prompt = [2, 4, 6];
  const want = refGreedy(prompt, 20, true);
  const engine = fakeEngine();
  const stopTok = want[5]!;
  const first = want.indexOf(stopTok);
  const s = submit(engine, { prompt, params: { temperature: 0, maxTokens: 20, stopTokenIds: [stopTok] } });
  const ig = submit(engine, { prompt, params: { temperature: 0, maxTokens: 20, ignoreEos: true } });
  const mt = submit(engine, {
    prompt,
    params: { temperature: 0, maxTokens: 20, minTokens: 20, stopTokenIds: [stopTok] },
  });
  runToEnd(engine);
  assert.deepEqual(s.tokenIds[0], want.slice(0, first + 1));
  assert.equal(s.outputs.at(-1)!.outputs[0]!.stopReason, stopTok);
  assert.equal(ig.tokenIds[0]!.length, 20);
  assert.equal(mt.tokenIds[0]!.length, 20);
  assert.ok(!mt.tokenIds[0]!.includes(stopTok));
  assertAllBlocksFree(engine);
});

test('logprobs are the raw model distribution; best_of returns the most likely sample', () => {
  const prompt = [9, 9, 9];
  const engine = fakeEngine();
  const all = submit(engine, { prompt, params: { n: 3, seed: 5, maxTokens: 6, ignoreEos: true, logprobs: 2 } });
  const best = submit(engine, { prompt, params: { n: 1, bestOf: 3, seed: 5, maxTokens: 6, ignoreEos: true } });
  runToEnd(engine);
  const cum = all.tokenIds.map((ids, i) => {
    const lps = all.outputs.flatMap((o) => o.outputs.filter((d) => d.index === i).flatMap((d) => d.logprobs ?? []));
    let ctx = [...prompt];
    return ids.reduce((acc, t, j) => {
      const lp = logSoftmax(referenceLogits(ctx, VOCAB));
      assert.ok(Math.abs(lps[j]!.logprob - lp[t]!) < 1e-5);
      assert.equal(lps[j]!.top.length, 2);
      assert.ok(lps[j]!.top[0]!.logprob >= lps[j]!.top[1]!.logprob);
      ctx = [...ctx, t];
      return acc + lp[t]!;
    }, 0);
  });
  const winner = cum.indexOf(Math.max(...cum));
  assert.deepEqual(best.tokenIds[0], all.tokenIds[winner]);
  assert.equal(best.outputs.length, 1, 'best_of reports once, at the end');
  assertAllBlocksFree(engine);
});

/** Beam search written plainly: expand every beam by every token, keep the best `width` by cumulative logprob. */
function refBeam(prompt: number[], width: number, steps: number): number[][] {
  let beams = [{ ids: [] as number[], score: 0 }];
  for (let s = 0; s < steps; s++) {
    const cands = beams.flatMap((b) => {
      const lp = logSoftmax(referenceLogits([...prompt, ...b.ids], VOCAB));
      return Array.from(lp, (v, t) => ({ ids: [...b.ids, t], score: b.score + v }));
    });
    beams = cands.sort((a, b) => b.score - a.score).slice(0, width);
  }
  return beams.map((b) => b.ids);
}

test('beam search equals an exhaustive reference beam search', () => {
  const engine = fakeEngine();
  const prompt = [11, 12, 13, 14, 15, 16];
  const r = submit(engine, {
    prompt,
    params: { useBeamSearch: true, n: 4, bestOf: 4, temperature: 0, maxTokens: 7, ignoreEos: true },
  });
  runToEnd(engine);
  assert.deepEqual(r.tokenIds, refBeam(prompt, 4, 7));
  assertAllBlocksFree(engine);
});

test('requests that can never fit are refused with both numbers', () => {
  const engine = fakeEngine({ numBlocks: 8, blockSize: 4 });
  assert.throws(
    () => submit(engine, { prompt: Array(200).fill(1), params: { maxTokens: 100 } }),
    /context length is 256 tokens, but 300 were requested \(200 in the prompt, 100 for the completion\)/,
  );
  assert.throws(
    () => submit(engine, { prompt: Array(20).fill(1), params: { maxTokens: 20 } }),
    /needs 10 KV blocks, but the whole KV cache has 8 blocks/,
  );
  assert.throws(
    () => submit(engine, { prompt: [1], params: { n: 20, maxTokens: 1 } }),
    /best_of \/ beam width 20 exceeds what one step can run \(max-num-seqs 16/,
  );
  assertAllBlocksFree(engine);
});

test('priority scheduling runs the most urgent request first', () => {
  const engine = fakeEngine({ scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 1, policy: 'priority' } });
  const order: string[] = [];
  const sink = (id: string) => ({
    push() {},
    end: () => order.push(id),
    fail(e: Error) {
      throw e;
    },
  });
  engine.submit({ id: 'low', prompt: [1, 2], priority: 5, params: { maxTokens: 3, ignoreEos: true } }, sink('low'));
  engine.submit({ id: 'high', prompt: [1, 2], priority: -1, params: { maxTokens: 3, ignoreEos: true } }, sink('high'));
  runToEnd(engine);
  assert.deepEqual(order, ['high', 'low']);
  assertAllBlocksFree(engine);
});

test('prompt logprobs come from the raw distribution at every prompt position, across prefill chunks', () => {
  const engine = fakeEngine({ scheduler: { maxNumBatchedTokens: 5, maxNumSeqs: 4, policy: 'fcfs' } });
  const prompt = randomPrompt(new Rng(8, 0), 13);
  const r = submit(engine, { prompt, params: { temperature: 0, maxTokens: 2, promptLogprobs: 3, ignoreEos: true } });
  runToEnd(engine);
  const withLp = r.outputs.filter((o) => o.promptLogprobs !== null);
  assert.equal(withLp.length, 1, 'prompt logprobs are sent once');
  const lps = withLp[0]!.promptLogprobs!;
  assert.equal(lps.length, prompt.length);
  assert.equal(lps[0], null);
  for (let i = 1; i < prompt.length; i++) {
    const want = logSoftmax(referenceLogits(prompt.slice(0, i), VOCAB));
    assert.equal(lps[i]!.tokenId, prompt[i]);
    assert.ok(Math.abs(lps[i]!.logprob - want[prompt[i]!]!) < 1e-5, `position ${i}`);
    assert.equal(lps[i]!.top.length, 3);
  }
  assert.deepEqual(r.tokenIds[0], refGreedy(prompt, 2, true));
  assertAllBlocksFree(engine);
});

test('the step loop yields to the event loop between steps', async () => {
  const engine = fakeEngine({ manual: false });
  const seen: number[] = [];
  const timer = setInterval(() => seen.push(engine.stats().steps), 0);
  const done = (async () => {
    for await (const _ of engine.generate({ prompt: [1, 2, 3], params: { maxTokens: 200, ignoreEos: true } }));
  })();
  // Other work gets turns while the request is running.
  await new Promise((resolve) => setImmediate(resolve));
  await done;
  clearInterval(timer);
  const total = engine.stats().steps;
  assert.ok(
    seen.some((s) => s > 0 && s < total),
    `timers ran only at steps ${[...new Set(seen)]}`,
  );
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('a failing step fails the requests in flight instead of hanging, and frees their blocks', async () => {
  const engine = fakeEngine({ manual: false });
  const runner = engine.config.runner as { execute: (...a: unknown[]) => unknown };
  const real = runner.execute.bind(runner);
  let calls = 0;
  runner.execute = (...a) => {
    if (++calls === 3) throw new Error('device lost');
    return real(...a);
  };
  await assert.rejects(async () => {
    for await (const _ of engine.generate({ prompt: [1, 2, 3], params: { maxTokens: 10, ignoreEos: true } }));
  }, /device lost/);
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('forked requests (n = 3, beam search) survive preemption in a tiny cache with unchanged outputs', () => {
  for (const prefixCaching of [true, false]) {
    const engine = fakeEngine({
      numBlocks: 20,
      blockSize: 4,
      enablePrefixCaching: prefixCaching,
      scheduler: { maxNumBatchedTokens: 16, maxNumSeqs: 8, policy: 'fcfs' },
    });
    const rng = new Rng(21, 0);
    const nPrompt = randomPrompt(rng, 10);
    const beamPrompt = randomPrompt(rng, 8);
    const singles = Array.from({ length: 6 }, (_, i) => randomPrompt(rng, 5 + 3 * i));
    // Older single requests first, so the forked ones are the newest and get preempted.
    const single = (p: number[]) =>
      submit(engine, { prompt: p, params: { temperature: 0, maxTokens: 14, ignoreEos: true } });
    const outs = singles.slice(0, 3).map(single);
    const n3 = submit(engine, { prompt: nPrompt, params: { n: 3, temperature: 0, maxTokens: 12, ignoreEos: true } });
    const beam = submit(engine, {
      prompt: beamPrompt,
      params: { useBeamSearch: true, n: 2, bestOf: 2, maxTokens: 8, ignoreEos: true },
    });
    outs.push(...singles.slice(3).map(single));
    const preempted = new Set<string>();
    const scheduler = engine.scheduler as unknown as { preempt: (r: { id: string }) => void };
    const preempt = scheduler.preempt.bind(scheduler);
    scheduler.preempt = (r) => {
      preempted.add(r.id);
      preempt(r);
    };
    runToEnd(engine);
    assert.ok(engine.stats().preemptions > 0, 'expected preemptions');
    assert.ok(
      preempted.has(n3.outputs[0]!.requestId) && preempted.has(beam.outputs[0]!.requestId),
      'forked requests preempted',
    );
    for (let i = 0; i < 3; i++) assert.deepEqual(n3.tokenIds[i], refGreedy(nPrompt, 12, true));
    assert.deepEqual(beam.tokenIds, refBeam(beamPrompt, 2, 8));
    singles.forEach((p, i) => {
      assert.deepEqual(outs[i]!.tokenIds[0], refGreedy(p, 14, true));
    });
    assertAllBlocksFree(engine);
  }
});
