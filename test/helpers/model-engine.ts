import { IncrementalDetokenizer } from '../../src/engine/detokenizer.ts';
import { Engine, type EngineConfig } from '../../src/engine/engine.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import type { Model } from '../../src/models/model.ts';
import type { KvQuant } from '../../src/primitives/kv-cache-type.ts';
import { ModelRunner } from '../../src/runner/model-runner.ts';

/**
 * A manually stepped engine over a loaded model and the tokenizer of its folder `dir`: 16-token blocks, prefix
 * caching, first come first served; `over` replaces any setting, `kvQuant` stores the KV cache quantized.
 */
export function modelEngine(
  dir: string,
  model: Model,
  over: Partial<EngineConfig> & { kvQuant?: KvQuant } = {},
): Engine {
  const { numBlocks = 256, kvQuant, ...rest } = over;
  const tokenizer = loadTokenizer(dir);
  return new Engine({
    runner: new ModelRunner(model, numBlocks, 16, kvQuant),
    tokenizer,
    newTextStream: (promptIds) => new IncrementalDetokenizer(tokenizer, { promptIds, skipSpecialTokens: true }),
    eosTokenIds: tokenizer.eosTokenIds,
    maxModelLen: model.config.maxPositionEmbeddings,
    numBlocks,
    blockSize: 16,
    enablePrefixCaching: true,
    scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 16, policy: 'fcfs' },
    manual: true,
    ...rest,
  });
}
