import assert from 'node:assert/strict';
import { Engine, type EngineConfig, type OutputSink, type TokenRequest } from '../../src/engine/engine.ts';
import type { RequestOutput } from '../../src/engine/types.ts';
import { FakeRunner, fakeTextStream, fakeTokenizer } from './fake-model.ts';

/** After every engine test: nothing queued, every block back on the free list, no reference left. */
export function assertAllBlocksFree(engine: Engine): void {
  const s = engine.stats();
  assert.equal(s.running + s.waiting, 0, 'requests still queued');
  assert.equal(s.freeBlocks, s.totalBlocks, `free blocks ${s.freeBlocks} != total ${s.totalBlocks}`);
  for (let b = 0; b < s.totalBlocks; b++) assert.equal(engine.blocks.refCountOf(b), 0, `block ${b} still referenced`);
}

/** A request's collected outputs: concatenated text and token ids per completion index. */
export interface Collected {
  outputs: RequestOutput[];
  text: string[];
  tokenIds: number[][];
  finishReasons: (string | null)[];
  done: boolean;
}

export function collector(): OutputSink & { result: Collected } {
  const result: Collected = { outputs: [], text: [], tokenIds: [], finishReasons: [], done: false };
  return {
    result,
    push(out) {
      result.outputs.push(out);
      for (const d of out.outputs) {
        result.text[d.index] = (result.text[d.index] ?? '') + d.text;
        result.tokenIds[d.index] = [...(result.tokenIds[d.index] ?? []), ...d.tokenIds];
        if (d.finishReason) result.finishReasons[d.index] = d.finishReason;
      }
    },
    end() {
      result.done = true;
    },
    fail(err) {
      throw err;
    },
  };
}

/** A manually stepped engine over the fake model. */
export function fakeEngine(over: Partial<EngineConfig> & { numBlocks?: number; blockSize?: number } = {}): Engine {
  const numBlocks = over.numBlocks ?? 64;
  const blockSize = over.blockSize ?? 4;
  return new Engine({
    runner: new FakeRunner(64, numBlocks, blockSize),
    tokenizer: fakeTokenizer,
    newTextStream: fakeTextStream,
    eosTokenIds: [0],
    maxModelLen: 256,
    numBlocks,
    blockSize,
    enablePrefixCaching: true,
    scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 16, policy: 'fcfs' },
    manual: true,
    ...over,
  });
}

/** Steps until idle (with a bound, so a livelock fails instead of hanging). */
export function runToEnd(engine: Engine, maxSteps = 10_000): number {
  let n = 0;
  while (engine.step()) if (++n > maxSteps) throw new Error('engine did not finish');
  return n;
}

export function submit(engine: Engine, req: TokenRequest): Collected {
  const sink = collector();
  engine.submit(req, sink);
  return sink.result;
}
