import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/engine.ts';
import { loadEngine } from '../../src/engine/load.ts';
import type { GenerateRequest } from '../../src/engine/types.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');
const skip = gpuSkip() || fixture.skip;

interface GoldenPrompt {
  input_ids: number[];
  greedy_ids: number[];
}

async function tokens(engine: Engine, req: GenerateRequest): Promise<{ ids: number[]; logprobIds: number[] }> {
  const ids: number[] = [];
  const logprobIds: number[] = [];
  for await (const out of engine.generate(req)) {
    for (const d of out.outputs) {
      ids.push(...d.tokenIds);
      logprobIds.push(...(d.logprobs ?? []).map((l) => l.tokenId));
    }
  }
  return { ids, logprobIds };
}

test('the engine on CUDA (device sampling for plain requests, host rows for logprobs) reproduces the golden greedy ids', {
  skip,
}, async () => {
  const golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
  const { engine } = await loadEngine(fixture.path, { device: 'cuda', dtype: 'float32', log: () => {} });
  try {
    const greedy = (p: GoldenPrompt, extra = {}) =>
      tokens(engine, {
        prompt: p.input_ids,
        params: { temperature: 0, maxTokens: p.greedy_ids.length, ignoreEos: true, ...extra },
      });
    // Everything in flight at once: plain greedy rows are sampled on the device, the logprobs ones on the host.
    const runs = await Promise.all([...golden.map((p) => greedy(p)), ...golden.map((p) => greedy(p, { logprobs: 2 }))]);
    runs.forEach(({ ids, logprobIds }, i) => {
      const p = golden[i % golden.length]!;
      assert.deepEqual(ids, p.greedy_ids, `run ${i}`);
      if (i >= golden.length) assert.deepEqual(logprobIds, p.greedy_ids, 'logprob entries');
    });
    // Every logits processor, on the device (plain) and on the host (logprobs), in the same steps: same tokens.
    const processed = (p: GoldenPrompt) => ({
      repetitionPenalty: 1.3,
      presencePenalty: 0.5,
      frequencyPenalty: 0.3,
      minTokens: 3,
      stopTokenIds: [p.greedy_ids[0]!],
      logitBias: { [p.greedy_ids[1]!]: -2 },
    });
    const pairs = await Promise.all(
      golden.flatMap((p) => [greedy(p, processed(p)), greedy(p, { ...processed(p), logprobs: 0 })]),
    );
    golden.forEach((p, i) => {
      const [device, host] = [pairs[2 * i]!.ids, pairs[2 * i + 1]!.ids];
      assert.deepEqual(device, host, `prompt ${i}: device and host sampling agree`);
      assert.notEqual(device[0], p.greedy_ids[0], 'min_tokens masked the stop token at the first step');
    });
    // Seeded draws on the device repeat, alone or batched with others.
    const seeded: GenerateRequest = {
      prompt: golden[0]!.input_ids,
      params: { temperature: 1, topP: 0.9, maxTokens: 16, seed: 5, ignoreEos: true },
    };
    const alone = await tokens(engine, seeded);
    const [batched] = await Promise.all([tokens(engine, seeded), ...golden.map((p) => greedy(p))]);
    assert.deepEqual(batched!.ids, alone.ids);
    const s = engine.stats();
    assert.equal(s.freeBlocks, s.totalBlocks, 'every block free at the end');
  } finally {
    await engine.shutdown();
  }
});

test('async scheduling on CUDA (follow-up steps take their tokens on the device) draws what stepping synchronously does', {
  skip,
}, async () => {
  const golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
  const draws = async (asyncScheduling: boolean) => {
    const { engine } = await loadEngine(fixture.path, {
      device: 'cuda',
      dtype: 'float32',
      asyncScheduling,
      log: () => {},
    });
    try {
      const req = (p: GoldenPrompt, seed: number, temperature: number): GenerateRequest => ({
        prompt: p.input_ids,
        params: { temperature, maxTokens: 24, seed, ignoreEos: true },
      });
      // Alone (batch 1, graph replays back to back), then all at once with a late arrival that drains the pipeline.
      const alone = [];
      for (const [i, p] of golden.entries()) alone.push((await tokens(engine, req(p, i, 0))).ids);
      const late = new Promise<{ ids: number[] }>((resolve) =>
        setTimeout(() => resolve(tokens(engine, req(golden[0]!, 9, 1))), 5),
      );
      const batched = await Promise.all([...golden.map((p, i) => tokens(engine, req(p, 20 + i, 0.8))), late]);
      const s = engine.stats();
      assert.equal(s.freeBlocks, s.totalBlocks, 'every block free at the end');
      return { alone, batched: batched.map((r) => r.ids) };
    } finally {
      await engine.shutdown();
    }
  };
  const [pipelined, stepped] = [await draws(true), await draws(false)];
  assert.deepEqual(pipelined, stepped);
  golden.forEach((p, i) => {
    const n = Math.min(p.greedy_ids.length, 24);
    assert.deepEqual(pipelined.alone[i]!.slice(0, n), p.greedy_ids.slice(0, n), `prompt ${i}: golden greedy ids`);
  });
});

test('the engine on CUDA under pressure (tiny KV cache: preemption, prefix-cache hits) keeps the golden greedy ids', {
  skip,
}, async () => {
  const golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
  // Ten blocks of 16 tokens (float32): each request fits alone (at most 5 blocks), twelve at once do not.
  const blockBytes = 2 * 3 * 16 * 2 * 16 * 4;
  const { engine } = await loadEngine(fixture.path, {
    device: 'cuda',
    dtype: 'float32',
    kvCacheMemory: 10 * blockBytes,
    log: () => {},
  });
  try {
    const copies = golden.flatMap((p) => [p, p, p, p]);
    const runs = await Promise.all(
      copies.map((p) =>
        tokens(engine, {
          prompt: p.input_ids,
          params: { temperature: 0, maxTokens: p.greedy_ids.length, ignoreEos: true },
        }),
      ),
    );
    for (const [i, { ids }] of runs.entries()) assert.deepEqual(ids, copies[i]!.greedy_ids, `request ${i}`);
    const s = engine.stats();
    assert.equal(s.totalBlocks, 10);
    assert.ok(s.preemptions > 0, 'the cache was too small for everything at once');
    assert.ok(s.prefixCacheHits > 0, 'copies of a prompt reuse its cached blocks');
    assert.equal(s.freeBlocks, s.totalBlocks, 'every block free at the end');
  } finally {
    await engine.shutdown();
  }
});

const stories = modelFixture('stories260K');

test('SnapKV on CUDA (float32) keeps what the CPU twin keeps: same greedy continuations of long stories', {
  skip: gpuSkip() || stories.skip,
}, async () => {
  const options = { kvCompression: { method: 'snapkv' as const, budget: 0.25 }, log: () => {} };
  const cpu = loadEngine(stories.path, { ...options, device: 'cpu' }).engine;
  const gpu = loadEngine(stories.path, { ...options, device: 'cuda', dtype: 'float32' }).engine;
  try {
    // Stories of the model's own (temperature 1 from BOS), 320 tokens each, then 24 greedy tokens after a 25% cache.
    const prompts = await Promise.all(
      [1, 2, 3, 4].map(async (seed) => {
        const { ids } = await tokens(cpu, {
          prompt: [1],
          params: { temperature: 1, seed, maxTokens: 319, ignoreEos: true },
        });
        return [1, ...ids];
      }),
    );
    const greedy = (engine: Engine) =>
      Promise.all(
        prompts.map((prompt) => tokens(engine, { prompt, params: { temperature: 0, maxTokens: 24, ignoreEos: true } })),
      );
    const [want, got] = [await greedy(cpu), await greedy(gpu)];
    assert.deepEqual(
      got.map((r) => r.ids),
      want.map((r) => r.ids),
    );
    assert.ok(gpu.stats().kvBlocksSaved > 0);
    assert.equal(gpu.stats().kvBlocksSaved, cpu.stats().kvBlocksSaved);
    assert.equal(gpu.stats().freeBlocks, gpu.stats().totalBlocks);
  } finally {
    await cpu.shutdown();
    await gpu.shutdown();
  }
});
