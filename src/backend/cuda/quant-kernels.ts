import type { QuantType } from '../../primitives/ggml-types.ts';
import { declareByRows, declareKernel } from './kernel.ts';

/** kernels/quant.cu's `QTYPE` define per type (quant_blocks.cuh's order). */
export const QTYPE: Record<QuantType, number> = {
  q4_0: 0,
  q4_1: 1,
  q5_0: 2,
  q5_1: 3,
  q8_0: 4,
  q2_k: 5,
  q3_k: 6,
  q4_k: 7,
  q5_k: 8,
  q6_k: 9,
};

// kernels/quant.cu, built per QTYPE.
export const QUANT_DEQUANT = declareKernel('quant', 'quant_dequant', {
  out: 'ptr',
  w: 'ptr',
  rows: 'i32',
  cols: 'i32',
  rowBytes: 'i64',
});
/** Both GEMVs' parameters after their input (the weight part, bias, shapes and output stride). */
const GEMV_WEIGHT_ARGS = {
  w: 'ptr',
  bias: 'ptr',
  rows: 'i32',
  n: 'i32',
  k: 'i32',
  rowBytes: 'i64',
  ldy: 'i32',
} as const;
const GEMV_ARGS = { y: 'ptr', x: 'ptr', ...GEMV_WEIGHT_ARGS } as const;
/** The decode GEMV by its rows' power of two (quant_gemv_t1 .. _t8, quant-tensor.ts `quantGemvTmax`). */
export const QUANT_GEMV = declareByRows('quant', 'quant_gemv', GEMV_ARGS);
const GEMV_Q8_ARGS = { y: 'ptr', xq: 'ptr', xs: 'ptr', ...GEMV_WEIGHT_ARGS } as const;
/** The integer decode GEMV over activations from QUANT_ACT_Q8, by its rows' power of two. */
export const QUANT_GEMV_Q8 = declareByRows('quant', 'quant_gemv_q8', GEMV_Q8_ARGS);
/** kernels/quant_act.cu: x quantized to 8 bits per 32 values for QUANT_GEMV_Q8 (one build per dtype). */
export const QUANT_ACT_Q8 = declareKernel('quant_act', 'quant_act_q8', {
  q: 'ptr',
  scales: 'ptr',
  x: 'ptr',
  groups: 'i32',
});
export const QUANT_EMBEDDING = declareKernel('quant', 'quant_embedding', {
  out: 'ptr',
  table: 'ptr',
  index: 'ptr',
  hidden: 'i32',
  rowBytes: 'i64',
  first: 'i32',
  partRows: 'i32',
});
export const QUANT_RANDOM_BLOCKS = declareKernel('quant', 'quant_random_blocks', {
  out: 'ptr',
  pool: 'ptr',
  blocks: 'i64',
  poolBlocks: 'i32',
  levelStart: 'i32',
  levelEnd: 'i32',
  seed: 'u32',
});
