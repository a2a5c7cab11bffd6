import type { KernelPlanModel } from '../backend/cuda/kernel-plan.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { QuantType } from '../primitives/ggml-types.ts';

/**
 * The shapes a decoder's kernels are built for, from its config alone: attention per head size, and the decode
 * linears of a Llama-shaped layer (packed q/k/v, o, packed gate/up, down) and the LM head, and `quantTypes`, the
 * quantized matrices' block types (runner/weight-bytes.ts's deviceWeights). Models shaped otherwise still run: a
 * module the plan misses compiles on first use.
 */
export function kernelPlanModel(
  c: ModelConfig,
  maxNumSeqs: number,
  quantTypes: readonly QuantType[] = [],
): KernelPlanModel {
  const { headDim: D, numHeads: H, numKvHeads: Hk, hiddenSize: hidden, intermediateSize: I } = c;
  return {
    attention: [{ headDim: D, group: H / Hk }],
    linears: [
      { m: (H + 2 * Hk) * D, k: hidden, gated: false },
      { m: hidden, k: H * D, gated: false },
      { m: I, k: hidden, gated: true },
      { m: hidden, k: I, gated: false },
      { m: c.vocabSize, k: hidden, gated: false },
    ],
    act: c.hiddenAct.includes('gelu') ? 'gelu_tanh' : 'silu',
    normOffset: c.modelType.startsWith('gemma') ? 1 : 0,
    maxDecodeRows: maxNumSeqs,
    quantTypes,
  };
}
