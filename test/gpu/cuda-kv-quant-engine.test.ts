import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/engine.ts';
import { loadEngine } from '../../src/engine/load.ts';
import type { TokenLogprob } from '../../src/engine/types.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');
const skip = gpuSkip() || fixture.skip;

/** A greedy run's ids and, per step, the gap between its top two logprobs. */
async function greedy(engine: Engine, prompt: number[], maxTokens: number) {
  const ids: number[] = [];
  const gaps: number[] = [];
  const params = { temperature: 0, maxTokens, ignoreEos: true, logprobs: 2 };
  for await (const out of engine.generate({ prompt, params })) {
    for (const d of out.outputs) {
      ids.push(...d.tokenIds);
      gaps.push(...(d.logprobs ?? []).map((l: TokenLogprob) => l.top[0]!.logprob - (l.top[1]?.logprob ?? -Infinity)));
    }
  }
  return { ids, gaps };
}

// A bf16 engine's batched and lone steps round differently; where the lone run's top two are closer than this, the
// batched run may take the other one (and differ from there on).
const GAP_TOL = 0.05;

// tiny-llama: 3 layers, 2 KV heads of 16 values: a block of 16 tokens stores 2 x 3 x 16 x 32 values.
const BLOCK_VALUES = 2 * 3 * 16 * 32;
const STORED_BYTES = { fp8: 1, q8_0: 34 / 32 } as const;

for (const kvCacheType of ['fp8', 'q8_0'] as const) {
  for (const dtype of ['bfloat16', 'float32'] as const) {
    test(`a ${kvCacheType} KV cache on CUDA (${dtype}) under preemption and prefix-cache hits keeps its lone greedy ids`, {
      skip,
    }, async () => {
      const golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts as {
        input_ids: number[];
        greedy_ids: number[];
      }[];
      const shared = Array.from({ length: 40 }, (_, i) => 3 + ((i * 37) % 900));
      const prompts = golden.map((p) => [...shared, ...p.input_ids]);
      const maxTokens = 24;
      const lone = loadEngine(fixture.path, { device: 'cuda', dtype, kvCacheType, log: () => {} }).engine;
      const want: Awaited<ReturnType<typeof greedy>>[] = [];
      try {
        for (const p of prompts) want.push(await greedy(lone, p, maxTokens));
      } finally {
        await lone.shutdown();
      }
      // Ten blocks: each request fits alone (at most 5), four copies of each at once do not.
      const blockBytes = Math.ceil(BLOCK_VALUES * STORED_BYTES[kvCacheType]);
      const lines: string[] = [];
      const { engine } = loadEngine(fixture.path, {
        device: 'cuda',
        dtype,
        kvCacheType,
        kvCacheMemory: 10 * blockBytes,
        log: (l) => lines.push(l),
      });
      try {
        const copies = prompts.flatMap((_, i) => [i, i, i, i]);
        const runs = await Promise.all(copies.map((i) => greedy(engine, prompts[i]!, maxTokens)));
        let compared = 0;
        for (const [r, run] of runs.entries()) {
          const w = want[copies[r]!]!;
          // Up to the first close step, not including it: that step's token may be either of its top two.
          const close = w.gaps.findIndex((g) => g < GAP_TOL);
          const n = close < 0 ? maxTokens : close;
          assert.deepEqual(run.ids.slice(0, n), w.ids.slice(0, n), `request ${r}: the first ${n} ids`);
          compared += n;
        }
        assert.ok(compared >= (runs.length * maxTokens) / 4, `${compared} ids compared: too few decisive steps`);
        const s = engine.stats();
        assert.equal(s.totalBlocks, 10, lines.join('\n'));
        assert.ok(s.preemptions > 0, 'the cache was too small for everything at once');
        assert.ok(s.prefixCacheHits > 0, 'copies of a prompt reuse its cached blocks');
        assert.equal(s.freeBlocks, s.totalBlocks, 'every block free at the end');
      } finally {
        await engine.shutdown();
      }
    });
  }
}

test("the start-up line counts a quantized cache's tokens: about 2x (fp8) and 1.88x (q8_0) a bf16 cache's", {
  skip,
}, async () => {
  for (const [kvCacheType, gain] of [
    ['fp8', '2.00'],
    ['q8_0', '1.88'],
  ] as const) {
    const lines: string[] = [];
    const { engine } = loadEngine(fixture.path, {
      device: 'cuda',
      dtype: 'bfloat16',
      kvCacheType,
      maxNumSeqs: 4,
      maxModelLen: 256,
      log: (l) => lines.push(l),
    });
    try {
      const line = lines.find((l) => l.startsWith('KV cache: ')) ?? '';
      const m = /^KV cache: (\d+) blocks of 16 tokens \((\d+) tokens, (\S+): (\S+)x a bf16 cache's, /.exec(line);
      assert.ok(m, `the capacity line: ${lines.join('\n')}`);
      assert.equal(Number(m[2]), Number(m[1]) * 16);
      assert.deepEqual([m[3], m[4]], [kvCacheType, gain]);
      assert.equal(engine.stats().totalBlocks, Number(m[1]));
    } finally {
      await engine.shutdown();
    }
  }
});
