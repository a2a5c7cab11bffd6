import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { threadedLoraMerge } from '../backend/cpu/threads.ts';
import { openCheckpoint } from '../loader/fp8-weights.ts';
import { ggufHeader, isGgufPath } from '../loader/gguf/files.ts';
import { GgufWeightSource } from '../loader/gguf/weights.ts';
import { loadModelConfig, type ModelConfig } from '../loader/hf-config.ts';
import { readLoraAdapter, withLora } from '../loader/lora-adapter.ts';
import { modelTask } from '../loader/model-task.ts';
import { parseQuantizationConfig } from '../loader/quantization-config.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import type { DType } from '../primitives/host-tensor.ts';
import type { LoadQuantization } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';
import type { BuildOptions } from './architecture.ts';
import type { Model } from './model.ts';
import { loadHooks } from './quantize-at-load.ts';
import { pickArchitecture } from './registry.ts';
import { checkTensorParallel } from './tensor-parallel.ts';
import { ModelWeights } from './weights.ts';

/**
 * Reads the config and weights of a model folder (config.json, safetensors; an FP8 checkpoint dequantized as it
 * loads, or kept as FP8 on a backend with FP8 weights, which `log` notes) or a GGUF file, checks every tensor's shape,
 * and builds the model on `backend`; with `quantization`, the Llama family's matrices are quantized as they load
 * (quantize-at-load.ts: to GGUF blocks on the host, or to FP8 by the backend). With `lora`, a PEFT LoRA adapter
 * folder is merged into the weights it adapts as they load (before any quantization).
 */
export function loadModel(
  path: string,
  backend: Backend,
  options: BuildOptions & {
    quantization?: LoadQuantization;
    lora?: string;
    /** Threads the LoRA merge may use (the machine's parallelism up to 8 when absent). */
    cpuThreads?: number;
    log?: (line: string) => void;
  } = {},
): Model {
  const config = loadModelConfig(path);
  const gguf = isGgufPath(path);
  const configPath = gguf ? path : join(path, 'config.json');
  const arch = pickArchitecture(config, configPath);
  checkTensorParallel(arch, backend.tensorParallelSize ?? 1, configPath);
  let source = openWeights(path, config, backend.computeDtype, backend.fp8Weights === true, options.log);
  try {
    if (options.lora) {
      const adapter = readLoraAdapter(options.lora);
      source = withLora(source, adapter, threadedLoraMerge(options.cpuThreads));
      options.log?.(`LoRA adapter ${options.lora}: merged into ${adapter.pairs.size} weights as they load`);
    }
    const { convert, fp8 } = loadHooks(options.quantization, config, source.has('lm_head.weight'), backend.name);
    return arch.build(config, new ModelWeights(source, backend, path, convert, fp8), backend, options);
  } finally {
    source.close();
  }
}

/** A model's weights as stored: a GGUF file's tensors, or a folder's checkpoint (see openCheckpoint). */
function openWeights(
  path: string,
  config: ModelConfig,
  dtype: DType,
  fp8Weights: boolean,
  log?: (line: string) => void,
): WeightSource {
  if (isGgufPath(path)) {
    return new GgufWeightSource(ggufHeader(path), String(ggufHeader(path).value('general.architecture')), config);
  }
  const checkpoint = openCheckpoint(path, config, dtype, fp8Weights);
  if (checkpoint.note) log?.(checkpoint.note);
  return checkpoint.weights;
}

/**
 * Throws a UserError unless the LoRA adapter folder merges into the model at `path` (a text generator, not an FP8
 * checkpoint, whose weights the adapter names, of its factors' shapes, 16- or 32-bit), reading headers only: what
 * `loadModel` with `lora` would refuse, said before any load.
 */
export function checkLoraFits(path: string, folder: string): void {
  const config = loadModelConfig(path);
  if (modelTask(path, config) !== 'generate') {
    throw new UserError(`${folder}: a LoRA adapter merges into a text generator, not ${path}`);
  }
  if (!isGgufPath(path) && parseQuantizationConfig(config.raw, join(path, 'config.json'))) {
    throw new UserError(
      `${folder}: ${path} is an FP8 checkpoint; a LoRA adapter merges only into 16- or 32-bit weights`,
    );
  }
  const source = openWeights(path, config, 'bf16', false);
  let adapted: WeightSource | null = null;
  try {
    adapted = withLora(source, readLoraAdapter(folder));
  } finally {
    (adapted ?? source).close();
  }
}
