import { BackgroundTokenizer } from '../loader/background-tokenizer.ts';
import type { EngineOptions } from '../runner/load.ts';
import { type PreparedPoolingModel, preparePoolingModel } from '../runner/pooling-setup.ts';
import { PoolingEngine } from './pooling-engine.ts';

export interface LoadedPoolingEngine extends Omit<PreparedPoolingModel, 'runner'> {
  engine: PoolingEngine;
}

/** Loads an embedding or reranking model (see `preparePoolingModel`) and builds its engine. */
export function loadPoolingEngine(model: string, options: EngineOptions = {}): LoadedPoolingEngine {
  const { runner, ...loaded } = preparePoolingModel(model, options);
  const engine = new PoolingEngine({
    runner,
    tokenizer: loaded.tokenizer,
    promptEncoder: new BackgroundTokenizer(loaded.tokenizer, loaded.modelDir, undefined, options.tokenizerWorker),
    maxModelLen: loaded.maxModelLen,
    maxNumBatchedTokens: loaded.maxNumBatchedTokens,
    maxNumSeqs: loaded.maxNumSeqs,
    // A backend the caller passed in stays the caller's; the one loaded here goes with the engine.
    release: () => {
      if (!options.backend) runner.model.backend.release();
    },
  });
  return { ...loaded, engine };
}
