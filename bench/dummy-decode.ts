/**
 * What the batch-1 decode benches share (bench/decode-profile.ts, bench/step-gaps.ts): a dummy-weight model of a
 * config (optionally quantized) on the CUDA backend with a small paged cache, a 128-token prompt prefilled, and a
 * decode step of one sequence at a given position; and a sampling row with no processor but the temperature.
 */

import type { SamplingRow } from '../src/backend/backend.ts';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadDummyModel } from '../src/models/dummy.ts';
import { parseQuantization } from '../src/primitives/quant/mix.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';
import { deviceWeights } from '../src/runner/weight-bytes.ts';

const BLOCK = 16;
/** Tokens the prompt prefills: the first decode step's position. */
export const PROMPT_LEN = 128;

/** The model of `dir` (argv: config folder, then a quantization), its prompt prefilled. */
export function dummyDecode(dir = 'bench/configs/llama3-8b', quantizationArg?: string) {
  const quantization = quantizationArg ? parseQuantization(quantizationArg, 'quantization') : undefined;
  const backend = new CudaBackend({
    ...settingsFromEnv().cuda,
    dtype: 'bf16',
    weightBytes: deviceWeights(dir, { dtype: 'bf16', dummy: true, quantization }).bytes,
  });
  const model = loadDummyModel(dir, backend, { quantization });
  const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: 64, blockSize: BLOCK });
  const blocks = Array.from({ length: 32 }, (_, i) => i);
  const run = (chunk: ScheduledChunk) =>
    backend.forwardStep(buildStepBatch([chunk], BLOCK), (s) => model.forward(s, kv));
  const prompt = Array.from({ length: PROMPT_LEN }, (_, i) => (i * 7919) % model.config.vocabSize);
  run({ tokenIds: prompt, startPos: 0, blockTable: blocks, logits: 'last' });
  /** One sequence's decode chunk at `pos`. */
  const decodeChunk = (pos: number): ScheduledChunk => ({
    tokenIds: [1],
    startPos: pos,
    blockTable: blocks,
    logits: 'last',
  });
  return { backend, model, kv, drv: backend.ctx.drv, blockSize: BLOCK, run, decodeChunk };
}

/** A sampling row with no processor but `temperature` (0: argmax), keyed by `seed` and `step`. */
export function plainRow(temperature: number, seed: number, step: number): SamplingRow {
  return {
    temperature,
    topK: 0,
    topP: 1,
    minP: 0,
    repetitionPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    seed,
    step,
  };
}
