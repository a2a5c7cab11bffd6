import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { logSoftmax } from '../../src/engine/sampling.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import type { Model } from '../../src/models/model.ts';
import type { KvQuant } from '../../src/primitives/kv-cache-type.ts';
import { buildStepBatch } from '../../src/runner/step-batch.ts';
import { assertAllBlocksFree, type Collected, runToEnd, submit } from '../helpers/engine.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { modelEngine } from '../helpers/model-engine.ts';

const tinyLlama = modelFixture('tiny-llama');
const stories = sharedFixture('models/stories260K');

function engineFor(
  dir: string,
  model: Model,
  opts: {
    numBlocks?: number;
    batchTokens?: number;
    prefixCaching?: boolean;
    kvBudget?: number;
    kvQuant?: KvQuant;
  } = {},
) {
  return modelEngine(dir, model, {
    numBlocks: opts.numBlocks ?? 256,
    kvQuant: opts.kvQuant,
    enablePrefixCaching: opts.prefixCaching ?? true,
    scheduler: { maxNumBatchedTokens: opts.batchTokens ?? 64, maxNumSeqs: 64, policy: 'fcfs' },
    ...(opts.kvBudget !== undefined && { kvCompression: { method: 'snapkv' as const, budget: opts.kvBudget } }),
  });
}

interface Job {
  prompt: number[];
  params: Partial<SamplingParams>;
  arriveAt: number;
}

function randomJobs(count: number, vocab: number, seed: number, maxPrompt: number, maxOut: number): Job[] {
  const rng = new Rng(seed, 0);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
  return Array.from({ length: count }, () => ({
    prompt: Array.from({ length: int(1, maxPrompt) }, () => int(3, vocab - 1)),
    params: { temperature: 0, maxTokens: int(1, maxOut), ignoreEos: true },
    arriveAt: int(0, 30),
  }));
}

/** Runs the jobs, each submitted at its arrival step; returns the generated ids per job. */
function runJobs(engine: Engine, jobs: Job[]): number[][] {
  const results: Collected[] = [];
  for (let step = 0; results.length < jobs.length || engine.stats().running + engine.stats().waiting > 0; step++) {
    jobs.forEach((j, i) => {
      if (j.arriveAt === step) results[i] = submit(engine, { prompt: j.prompt, params: j.params });
    });
    engine.step();
    assert.ok(step < 20_000, 'engine did not finish');
  }
  assert.ok(results.every((r) => r.done));
  return results.map((r) => r.tokenIds[0]!);
}

/** Each job alone in an otherwise idle engine, prefix caching off. */
function runAlone(dir: string, model: Model, jobs: Job[], kvQuant?: KvQuant): number[][] {
  const engine = engineFor(dir, model, { prefixCaching: false, kvQuant });
  const out = jobs.map((j) => {
    const r = submit(engine, { prompt: j.prompt, params: j.params });
    runToEnd(engine);
    return r.tokenIds[0]!;
  });
  assertAllBlocksFree(engine);
  return out;
}

test('batch invariance at temperature 0: 64 requests arriving at random steps equal each one alone', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const jobs = randomJobs(64, model.config.vocabSize, 1, 70, 24);
  const alone = runAlone(tinyLlama.path, model, jobs);
  const engine = engineFor(tinyLlama.path, model, { batchTokens: 48 });
  assert.deepEqual(runJobs(engine, jobs), alone);
  assertAllBlocksFree(engine);
});

test('a KV cache of a few blocks: 32 concurrent requests complete with preemptions and equal outputs', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const jobs = randomJobs(32, model.config.vocabSize, 2, 60, 30).map((j) => ({ ...j, arriveAt: 0 }));
  const alone = runAlone(tinyLlama.path, model, jobs);
  const engine = engineFor(tinyLlama.path, model, { numBlocks: 8, batchTokens: 64 });
  assert.deepEqual(runJobs(engine, jobs), alone);
  assert.ok(engine.stats().preemptions > 0, 'expected preemptions with an 8-block cache');
  assertAllBlocksFree(engine);
});

for (const kvQuant of ['fp8', 'q8_0', 'q4_0'] as const) {
  test(`a ${kvQuant} KV cache: prefix-cache hits and preemptions leave each request's greedy ids as it gets alone`, {
    skip: tinyLlama.skip,
  }, () => {
    const model = loadModel(tinyLlama.path, new CpuBackend());
    const shared = Array.from({ length: 40 }, (_, i) => 3 + ((i * 37) % 1000));
    const jobs = randomJobs(24, model.config.vocabSize, 6, 30, 40).map((j) => ({
      ...j,
      prompt: [...shared, ...j.prompt],
      arriveAt: 0,
    }));
    const alone = runAlone(tinyLlama.path, model, jobs, kvQuant);
    // The f32 cache's answers differ somewhere: the quantized cache is what is being run.
    assert.notDeepEqual(alone, runAlone(tinyLlama.path, model, jobs), 'quantizing the cache changes some outputs');
    const engine = engineFor(tinyLlama.path, model, { numBlocks: 8, batchTokens: 64, kvQuant });
    assert.deepEqual(runJobs(engine, jobs), alone);
    assert.ok(engine.stats().preemptions > 0, 'expected preemptions with an 8-block cache');
    assert.ok(engine.stats().prefixCacheHits > 0, 'expected prefix-cache hits on the shared 40-token prefix');
    assertAllBlocksFree(engine);
  });
}

test('a second request sharing a 200-token prefix computes only its remainder; same outputs with caching off', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const rng = new Rng(3, 0);
  const tok = () => 3 + Math.floor(rng.next() * 1000);
  const prefix = Array.from({ length: 200 }, tok);
  const first = [...prefix, ...Array.from({ length: 7 }, tok)];
  const second = [...prefix, ...Array.from({ length: 25 }, tok)];
  const params = { temperature: 0, maxTokens: 8, ignoreEos: true };
  const outs: number[][][] = [];
  for (const prefixCaching of [true, false]) {
    const engine = engineFor(tinyLlama.path, model, { prefixCaching });
    const a = submit(engine, { prompt: first, params });
    runToEnd(engine);
    const before = engine.stats().promptTokensComputed;
    const b = submit(engine, { prompt: second, params });
    runToEnd(engine);
    const computed = engine.stats().promptTokensComputed - before;
    const cached = b.outputs.at(-1)!.metrics.cachedPromptTokens;
    // 200 shared tokens = 12 full blocks of 16 (192 tokens) reusable.
    assert.equal(cached, prefixCaching ? 192 : 0);
    assert.equal(computed, second.length - cached);
    outs.push([a.tokenIds[0]!, b.tokenIds[0]!]);
    assertAllBlocksFree(engine);
  }
  assert.deepEqual(outs[0], outs[1]);
});

test('n = 4 shares the prompt blocks on the real model and each completion equals the request alone', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const prompt = Array.from({ length: 40 }, (_, i) => 10 + i); // 3 blocks: 16 + 16 + 8
  const engine = engineFor(tinyLlama.path, model);
  const params = { temperature: 0, maxTokens: 12, ignoreEos: true };
  const one = submit(engine, { prompt, params });
  runToEnd(engine);
  const four = submit(engine, { prompt, params: { ...params, n: 4 } });
  engine.step(); // prompt: 2 full blocks from the prefix cache, the partial third computed; then the fork
  assert.equal(engine.blocks.numUsed, 3);
  engine.step(); // the shared partial block is copied for three of the four
  assert.equal(engine.blocks.numUsed, 2 + 4);
  runToEnd(engine);
  for (let i = 0; i < 4; i++) assert.deepEqual(four.tokenIds[i], one.tokenIds[0]);
  assertAllBlocksFree(engine);
});

test('SnapKV on the real model: a budget past every prompt changes nothing; compressed requests survive preemption', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const jobs = randomJobs(12, model.config.vocabSize, 4, 90, 12).map((j) => ({ ...j, arriveAt: 0 }));
  const alone = runAlone(tinyLlama.path, model, jobs);
  const roomy = engineFor(tinyLlama.path, model, { kvBudget: 90 });
  assert.deepEqual(runJobs(roomy, jobs), alone);
  assert.equal(roomy.stats().kvBlocksSaved, 0);

  const long = randomJobs(12, model.config.vocabSize, 5, 60, 12).map((j, i) => ({
    ...j,
    prompt: Array.from({ length: 100 + 5 * i }, (_, n) => 3 + ((j.prompt[n % j.prompt.length]! + n) % 1000)),
  }));
  const compressedAlone = long.map((j) => {
    const engine = engineFor(tinyLlama.path, model, { kvBudget: 40 });
    const r = submit(engine, { prompt: j.prompt, params: j.params });
    runToEnd(engine);
    assert.equal(engine.stats().kvBlocksSaved, Math.ceil(j.prompt.length / 16) - 3);
    return r.tokenIds[0]!;
  });
  assert.notDeepEqual(compressedAlone, runAlone(tinyLlama.path, model, long), 'compression changes some outputs');
  const tight = engineFor(tinyLlama.path, model, { kvBudget: 40, numBlocks: 12, batchTokens: 64 });
  assert.deepEqual(runJobs(tight, long), compressedAlone);
  assert.ok(tight.stats().preemptions > 0, 'expected preemptions with a 12-block cache');
  assertAllBlocksFree(tight);
});

/** Next-token logprobs of a whole token list, by one plain prefill in a fresh cache. */
function nextLogprobs(model: Model, ids: number[]): Float32Array {
  const backend = model.backend;
  const blocks = Math.ceil(ids.length / 16);
  const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: blocks, blockSize: 16 });
  const batch = buildStepBatch(
    [{ tokenIds: ids, startPos: 0, blockTable: Array.from({ length: blocks }, (_, i) => i), logits: 'last' }],
    16,
  );
  return logSoftmax(backend.toHost(model.forward(backend.beginStep(batch), kv)));
}

test('beam search of width 4 on stories260K equals an exhaustive reference beam search', { skip: stories.skip }, () => {
  const model = loadModel(stories.path, new CpuBackend());
  const tokenizer = loadTokenizer(stories.path);
  const prompt = tokenizer.encode('Once upon a time');
  const width = 4;
  const steps = 10;
  // Reference: every beam extended by every vocabulary token, the best `width` kept by cumulative logprob.
  let beams = [{ ids: [] as number[], score: 0 }];
  for (let s = 0; s < steps; s++) {
    beams = beams
      .flatMap((b) =>
        Array.from(nextLogprobs(model, [...prompt, ...b.ids]), (lp, t) => ({
          ids: [...b.ids, t],
          score: b.score + lp,
        })),
      )
      .sort((a, b) => b.score - a.score)
      .slice(0, width);
  }
  const engine = engineFor(stories.path, model);
  const r = submit(engine, {
    prompt,
    params: { useBeamSearch: true, n: width, bestOf: width, temperature: 0, maxTokens: steps, ignoreEos: true },
  });
  runToEnd(engine);
  assert.deepEqual(
    r.tokenIds,
    beams.map((b) => b.ids),
  );
  assert.equal(r.text[0], tokenizer.decode(beams[0]!.ids, { skipSpecialTokens: true }));
  assertAllBlocksFree(engine);
});

test('logprob token strings keep their leading spaces: joined, they equal the streamed text', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  const engine = engineFor(tinyLlama.path, model);
  const prompt = loadTokenizer(tinyLlama.path).encode('Once upon a time there was');
  const r = submit(engine, { prompt, params: { temperature: 0, maxTokens: 24, ignoreEos: true, logprobs: 1 } });
  runToEnd(engine);
  const tokens = r.outputs.flatMap((o) => o.outputs[0]?.logprobs ?? []).map((l) => l.token);
  assert.equal(tokens.length, 24);
  assert.ok(tokens[0]!.startsWith(' '), JSON.stringify(tokens[0])); // sentencepiece drops it when decoded alone
  assert.equal(tokens.join(''), r.text[0]);
  assertAllBlocksFree(engine);
});
