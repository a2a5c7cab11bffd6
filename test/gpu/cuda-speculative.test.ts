import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/engine.ts';
import { loadEngine } from '../../src/engine/load.ts';
import type { SpeculativeOptions } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');
const skip = gpuSkip() || fixture.skip;

interface GoldenPrompt {
  input_ids: number[];
  greedy_ids: number[];
}

async function greedyIds(engine: Engine, p: GoldenPrompt): Promise<number[]> {
  const ids: number[] = [];
  const params = { temperature: 0, maxTokens: p.greedy_ids.length, ignoreEos: true };
  for await (const out of engine.generate({ prompt: p.input_ids, params })) {
    for (const d of out.outputs) ids.push(...d.tokenIds);
  }
  return ids;
}

// Float32 on the GPU: verification runs the prefill kernels over k + 1 rows where plain decoding runs the decode
// kernel, and float32 keeps their difference far below tiny-llama's top-two gaps on the golden prompts.
for (const proposer of ['ngram', 'self']) {
  test(`CUDA: greedy output with speculation (${proposer}) equals the golden ids, rejected slots rolled back`, {
    skip,
  }, async () => {
    const golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
    const speculative: SpeculativeOptions = {
      proposer: proposer === 'self' ? fixture.path : 'ngram',
      numTokens: 4,
      ngramMin: 1,
      ngramMax: 3,
    };
    const { engine } = loadEngine(fixture.path, { device: 'cuda', dtype: 'float32', speculative, log: () => {} });
    try {
      const runs = await Promise.all(golden.map((p) => greedyIds(engine, p)));
      assert.deepEqual(
        runs,
        golden.map((p) => p.greedy_ids),
      );
      const s = engine.stats();
      assert.ok(s.specDraftTokens > 0, 'nothing was proposed');
      if (proposer === 'self') assert.equal(s.specAcceptedTokens, s.specDraftTokens, 'the target rejected itself');
      assert.equal(s.freeBlocks, s.totalBlocks);
    } finally {
      await engine.shutdown();
    }
  });
}
