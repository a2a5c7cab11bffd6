import { join } from 'node:path';
import type { Backend, HostTensor } from '../backend/backend.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import type { TextTokenizer, TokenizerGenerationIds } from '../loader/tokenizer.ts';
import type { LoadQuantization } from '../primitives/quant/mix.ts';
import type { BuildOptions } from './architecture.ts';
import type { Model } from './model.ts';
import { loadHooks } from './quantize-at-load.ts';
import { pickArchitecture } from './registry.ts';
import { checkTensorParallel } from './tensor-parallel.ts';
import { ModelWeights } from './weights.ts';

const EMPTY = new Uint8Array(0);

/**
 * Weights for `--load-format dummy`: every tensor the architecture asks for, in the shape config.json implies, with
 * no bytes. A backend fills such a tensor itself (the CUDA backend with random values on the device), so a
 * benchmark needs config.json alone. Optional tensors (a separate lm_head when embeddings are tied) are absent.
 */
class DummyWeights extends ModelWeights {
  override has(): boolean {
    return false;
  }
  override host(name: string, shape: readonly number[]): HostTensor {
    return { name, shape: [...shape], dtype: 'bf16', bytes: EMPTY };
  }
}

const noSource: WeightSource = {
  names: () => [],
  has: () => false,
  get: (name) => {
    throw new Error(`dummy weights: ${name} has no stored data`);
  },
  close: () => {},
};

/** Weights for `--load-format dummy` (see DummyWeights); `convert` and `fp8` as ModelWeights takes them. */
export function dummyWeights(
  dir: string,
  backend: Backend,
  convert?: (h: HostTensor) => HostTensor,
  fp8?: (h: HostTensor) => boolean,
): ModelWeights {
  return new DummyWeights(noSource, backend, dir, convert, fp8);
}

/**
 * Builds the model of `dir/config.json` with dummy weights (see DummyWeights); with `quantization`, the matrices it
 * quantizes are random blocks of their type, made on the host for the CPU backend and on the device by the CUDA one,
 * or for fp8 random FP8 weights the backend makes.
 */
export function loadDummyModel(
  dir: string,
  backend: Backend,
  options: BuildOptions & { quantization?: LoadQuantization } = {},
): Model {
  const config = loadModelConfig(dir);
  const arch = pickArchitecture(config, join(dir, 'config.json'));
  checkTensorParallel(arch, backend.tensorParallelSize ?? 1, join(dir, 'config.json'));
  const { convert, fp8 } = loadHooks(options.quantization, config, false, backend.name);
  return arch.build(config, dummyWeights(dir, backend, convert, fp8), backend, options);
}

/**
 * A tokenizer for a dummy model folder that has none (a bare config.json): text is encoded as its UTF-8 bytes
 * (ids 0..255) and ids decode to their bytes, or to `<id>` above 255. Enough to drive the engine and the HTTP
 * server end to end with random weights; the text means nothing.
 */
export function dummyTokenizer(vocabSize: number, ids: TokenizerGenerationIds): TextTokenizer {
  return {
    vocabSize,
    bosTokenId: ids.bosTokenId,
    eosTokenIds: ids.eosTokenIds,
    encode: (text) => [...Buffer.from(text, 'utf8')],
    decode: (tokens) => {
      let out = '';
      let bytes: number[] = [];
      const flush = () => {
        out += Buffer.from(bytes).toString('utf8');
        bytes = [];
      };
      for (const id of tokens) {
        if (id < 256) bytes.push(id);
        else {
          flush();
          out += `<${id}>`;
        }
      }
      flush();
      return out;
    },
  };
}
