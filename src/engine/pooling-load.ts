import { BackgroundTokenizer } from '../loader/background-tokenizer.ts';
import type { EngineOptions } from '../runner/load.ts';
import { type PreparedPoolingModel, preparePoolingModel } from '../runner/pooling-setup.ts';
import { PoolingEngine } from './pooling-engine.ts';

export interface LoadedPoolingEngine extends Omit<PreparedPoolingModel, 'runner' | 'release'> {
  engine: PoolingEngine;
}

/** Loads an embedding or reranking model (see `preparePoolingModel`) and builds its engine. */
export async function loadPoolingEngine(model: string, options: EngineOptions = {}): Promise<LoadedPoolingEngine> {
  const { runner, release, ...loaded } = await preparePoolingModel(model, options);
  const engine = new PoolingEngine({
    runner,
    tokenizer: loaded.tokenizer,
    promptEncoder: new BackgroundTokenizer(loaded.tokenizer, loaded.modelDir, undefined, options.tokenizerWorker),
    maxModelLen: loaded.maxModelLen,
    maxNumBatchedTokens: loaded.maxNumBatchedTokens,
    maxNumSeqs: loaded.maxNumSeqs,
    // A backend the caller passed in stays the caller's; the one loaded here (or the runner thread) goes with the engine.
    release,
  });
  return { ...loaded, engine };
}
