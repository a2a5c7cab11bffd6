/**
 * What the decode benches share (bench/decode-profile.ts, bench/step-gaps.ts): a dummy-weight model of a config
 * (optionally quantized) on the CUDA backend with a paged cache for `seqs` sequences of `context` tokens, and a decode
 * step of every sequence at a given position, its graph captured at exactly `seqs` sequences. One sequence has its `context`-token prompt prefilled; several are timed over the
 * cache as allocated (prefilling 200 long prompts at once would not fit the activation arena): a dense model's
 * kernels take the same time whatever the values, but a mixture-of-experts model's routing of such values is not a
 * real one, so time MoE configs with one sequence.
 */

import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadDummyModel } from '../src/models/dummy.ts';
import type { KvQuant } from '../src/primitives/kv-cache-type.ts';
import { isFp8, parseLoadQuantization } from '../src/primitives/quant/mix.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';
import { deviceWeights } from '../src/runner/weight-bytes.ts';

const BLOCK = 16;
/** Tokens the prompt prefills: the first decode step's position. */
export const PROMPT_LEN = 128;

/** The model of `dir` (argv: config folder, then a quantization) with its cache, one sequence's prompt prefilled. */
export function dummyDecode(
  dir = 'bench/configs/llama3-8b',
  quantizationArg?: string,
  { seqs = 1, context = PROMPT_LEN, kvQuant }: { seqs?: number; context?: number; kvQuant?: KvQuant } = {},
) {
  const quantization = quantizationArg ? parseLoadQuantization(quantizationArg, 'quantization') : undefined;
  const fp8 = quantization !== undefined && isFp8(quantization);
  const backend = new CudaBackend({
    ...settingsFromEnv().cuda,
    dtype: 'bf16',
    weightBytes: deviceWeights(dir, { dtype: 'bf16', dummy: true, fp8, quantization: fp8 ? undefined : quantization })
      .bytes,
  });
  const model = loadDummyModel(dir, backend, { quantization });
  backend.graphs?.setMaxBatch(seqs);
  // Room for 256 decode steps past the context.
  const perSeq = Math.ceil((context + 256) / BLOCK);
  const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: seqs * perSeq, blockSize: BLOCK, quant: kvQuant });
  const tables = Array.from({ length: seqs }, (_, s) => Array.from({ length: perSeq }, (_, i) => s * perSeq + i));
  const run = (chunks: ScheduledChunk[]) =>
    backend.forwardStep(buildStepBatch(chunks, BLOCK), (s) => model.forward(s, kv));
  if (seqs === 1) {
    const prompt = Array.from({ length: context }, (_, i) => (i * 7919) % model.config.vocabSize);
    run([{ tokenIds: prompt, startPos: 0, blockTable: tables[0], logits: 'last' }]);
  }
  /** Every sequence's decode chunk at `pos` (the first decode position is `context`). */
  const decodeChunks = (pos: number): ScheduledChunk[] =>
    tables.map((blockTable) => ({ tokenIds: [1], startPos: pos, blockTable, logits: 'last' }));
  return { backend, model, kv, drv: backend.ctx.drv, blockSize: BLOCK, run, decodeChunks };
}
