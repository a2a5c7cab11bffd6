import type { DType } from './host-tensor.ts';

/** Block-quantized weight types pagoda computes with (llama.cpp's names, lower case). */
export type QuantType = 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q8_0' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k';

/** One ggml tensor type as a GGUF file numbers it. */
export interface GgmlTypeInfo {
  /** The `ggml_type` enum value stored in a GGUF tensor header. */
  readonly id: number;
  /** llama.cpp's spelling, for messages ("Q4_K", "IQ2_XXS"). */
  readonly name: string;
  /** Values per block (1 for plain floats). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** What pagoda stores it as; absent for types it cannot compute with (refused at load, naming the tensor). */
  readonly stored?: DType | QuantType;
}

const t = (id: number, name: string, blockSize: number, typeSize: number, stored?: DType | QuantType) =>
  ({ id, name, blockSize, typeSize, stored }) as const;

/** ggml's type table (ggml.c `type_traits`); sizes are needed even for refused types to name them precisely. */
export const GGML_TYPES: readonly GgmlTypeInfo[] = [
  t(0, 'F32', 1, 4, 'f32'),
  t(1, 'F16', 1, 2, 'f16'),
  t(2, 'Q4_0', 32, 18, 'q4_0'),
  t(3, 'Q4_1', 32, 20, 'q4_1'),
  t(6, 'Q5_0', 32, 22, 'q5_0'),
  t(7, 'Q5_1', 32, 24, 'q5_1'),
  t(8, 'Q8_0', 32, 34, 'q8_0'),
  t(9, 'Q8_1', 32, 36),
  t(10, 'Q2_K', 256, 84, 'q2_k'),
  t(11, 'Q3_K', 256, 110, 'q3_k'),
  t(12, 'Q4_K', 256, 144, 'q4_k'),
  t(13, 'Q5_K', 256, 176, 'q5_k'),
  t(14, 'Q6_K', 256, 210, 'q6_k'),
  t(15, 'Q8_K', 256, 292),
  t(16, 'IQ2_XXS', 256, 66),
  t(17, 'IQ2_XS', 256, 74),
  t(18, 'IQ3_XXS', 256, 98),
  t(19, 'IQ1_S', 256, 50),
  t(20, 'IQ4_NL', 32, 18),
  t(21, 'IQ3_S', 256, 110),
  t(22, 'IQ2_S', 256, 82),
  t(23, 'IQ4_XS', 256, 136),
  t(24, 'I8', 1, 1),
  t(25, 'I16', 1, 2),
  t(26, 'I32', 1, 4),
  t(27, 'I64', 1, 8),
  t(28, 'F64', 1, 8),
  t(29, 'IQ1_M', 256, 56),
  t(30, 'BF16', 1, 2, 'bf16'),
  t(34, 'TQ1_0', 256, 54),
  t(35, 'TQ2_0', 256, 66),
  t(39, 'MXFP4', 32, 17),
];

const BY_ID = new Map(GGML_TYPES.map((x) => [x.id, x]));
const BY_STORED = new Map(GGML_TYPES.filter((x) => x.stored).map((x) => [x.stored!, x]));

export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** The ggml type a stored dtype or quant type is written as. */
export function ggmlTypeOf(stored: DType | QuantType): GgmlTypeInfo {
  return BY_STORED.get(stored)!;
}

export function isQuantType(x: string): x is QuantType {
  return BY_STORED.has(x as QuantType) && !['f32', 'f16', 'bf16'].includes(x);
}

/** Bytes of `count` values of a type; `count` must be a whole number of blocks. */
export function ggmlBytes(info: GgmlTypeInfo, count: number): number {
  if (count % info.blockSize !== 0) {
    throw new Error(`${count} values are not a whole number of ${info.name} blocks of ${info.blockSize}`);
  }
  return (count / info.blockSize) * info.typeSize;
}
