import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, DType, HostTensor, Tensor, WeightLoadOptions } from '../backend/backend.ts';
import { fp8Bytes, fp8Fits } from '../backend/cuda/fp8.ts';
import { keepsBlocks } from '../backend/cuda/quant-load.ts';
import { DTYPE_BYTES } from '../backend/cuda/tensor.ts';
import { keepsFp8 } from '../loader/fp8-weights.ts';
import { ggufHeader, isGgufPath } from '../loader/gguf/files.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { parseQuantizationConfig } from '../loader/quantization-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';
import { loadDummyModel } from '../models/dummy.ts';
import { loadPoolingModel } from '../models/pooling-load.ts';
import { isQuantType, type QuantType } from '../primitives/ggml-types.ts';
import { FP8_QUANTIZATION, type QuantScheme } from '../primitives/quant/mix.ts';
import { asRowMatrix, quantStackGroups } from '../primitives/quant/stack.ts';

const aligned = (n: number) => Math.ceil(n / 256) * 256;

/**
 * A stand-in backend that only counts the bytes the model's weights take in `dtype` (quantized matrices as blocks,
 * FP8 where asked and fitting).
 */
function countingBackend(dtype: DType): {
  backend: Backend;
  bytes: () => number;
  blockTypes: Set<QuantType>;
  expertScratch: () => number;
} {
  let bytes = 0;
  let expertScratch = 0;
  const blockTypes = new Set<QuantType>();
  const loadStacked = (parts: readonly HostTensor[], shape?: readonly number[]): Tensor => {
    // An expert stack of several block types is values on the device (CudaBackend.loadStacked).
    if (shape && shape.length !== 2) {
      bytes += aligned(valueBytes(shape, dtype));
      return { shape: [...shape], dtype };
    }
    const groups = quantStackGroups(parts);
    for (const g of groups) {
      bytes += aligned(g.rows * g.rowBytes);
      blockTypes.add(g.type);
    }
    return { shape: [groups.reduce((a, g) => a + g.rows, 0), parts[0]!.shape[1]!], dtype };
  };
  const loadWeight = (w: HostTensor, opts?: WeightLoadOptions): Tensor => {
    if (keepsBlocks(w, opts?.transpose === true)) {
      if (w.shape.length === 3) expertScratch = Math.max(expertScratch, valueBytes(w.shape, dtype));
      return loadStacked([asRowMatrix(w)]);
    }
    const fp8 = opts?.quantize === 'fp8' && fp8Fits(w.shape);
    bytes += fp8 ? fp8Bytes(w.shape) : aligned(valueBytes(w.shape, dtype));
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    return { shape, dtype };
  };
  const backend = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight') return loadWeight;
      if (key === 'loadStacked') return loadStacked;
      if (key === 'name') return 'cuda';
      if (key === 'fp8Weights') return true;
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => {
        throw new Error(`weight counting: ${String(key)} called while building the model`);
      };
    },
  });
  return { backend, bytes: () => bytes, blockTypes, expertScratch: () => expertScratch };
}

/** A tensor's bytes as values in `dtype` (an expert stack's: what the CUDA backend's expert scratch holds). */
function valueBytes(shape: readonly number[], dtype: DType): number {
  return shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
}

/** How the model in `dir` is loaded onto the device. */
export interface DeviceWeightOptions {
  dtype: DType;
  /** Random weights from config.json. */
  dummy?: boolean;
  /** As an embedding or reranking model. */
  pooling?: boolean;
  /** `--quantization fp8`. */
  fp8?: boolean;
  /** Its matrices as this scheme's blocks (a 16-bit checkpoint quantized at load, or dummy weights of that mix). */
  quantization?: QuantScheme;
}

/**
 * What the weights of the model in `dir` take on the device: their bytes, so they can be one allocation, and the
 * block types its quantized matrices are kept in (one kernels/quant.cu build each, which the kernel plan compiles
 * ahead), and whether its decoder matrices are FP8 (asked for, or an FP8 checkpoint whose layout keeps them). Counted exactly by building the model once on a counting backend for dummy weights, for `fp8` (the
 * checkpoint's shapes as config.json gives them) and for a checkpoint quantized at load; from a GGUF file's tensor
 * table (quantized matrices as stored); estimated from the safetensors file sizes otherwise (headers make it a slight
 * overestimate), or for an FP8 checkpoint from the tensors' element counts (scales included): one byte per FP8 value
 * where a card with FP8 keeps them, else dequantized. A checkpoint that stores an LM head its config.json says is tied
 * takes more than counted; the weight slab then grows by another allocation.
 */
export function deviceWeights(
  dir: string,
  o: DeviceWeightOptions,
): { bytes: number; blockTypes: QuantType[]; fp8: boolean; expertScratchBytes: number } {
  const { dtype, quantization } = o;
  // A checkpoint quantized at load takes its blocks' bytes, not its files': counted like a dummy of that mix.
  if (o.dummy || o.fp8 || (quantization && !isGgufPath(dir))) {
    const c = countingBackend(dtype);
    if (o.pooling) loadPoolingModel(dir, c.backend, { dummy: true });
    else loadDummyModel(dir, c.backend, { quantization: o.fp8 ? FP8_QUANTIZATION : quantization });
    return {
      bytes: c.bytes(),
      blockTypes: [...c.blockTypes],
      fp8: o.fp8 === true,
      expertScratchBytes: c.expertScratch(),
    };
  }
  if (isGgufPath(dir)) return { ...ggufWeights(dir, dtype, o.pooling === true), fp8: false };
  const config = loadModelConfig(dir);
  const fp8Checkpoint = parseQuantizationConfig(config.raw, join(dir, 'config.json'));
  if (fp8Checkpoint) {
    const fp8 = keepsFp8(fp8Checkpoint);
    return { bytes: checkpointBytes(dir, dtype, fp8), blockTypes: [], fp8, expertScratchBytes: 0 };
  }
  const stored = config.dtype === 'float32' ? 4 : 2;
  let total = 0;
  for (const f of readdirSync(dir)) if (f.endsWith('.safetensors')) total += statSync(join(dir, f)).size;
  return { bytes: Math.ceil((total * DTYPE_BYTES[dtype]) / stored), blockTypes: [], fp8: false, expertScratchBytes: 0 };
}

function checkpointBytes(dir: string, dtype: DType, keepFp8: boolean): number {
  const source = openSafetensors(dir);
  try {
    const bytes = (n: string) => {
      const { shape, dtype: stored } = source.describe(n);
      if (keepFp8 && stored === 'f8_e4m3' && fp8Fits(shape)) return fp8Bytes(shape);
      return aligned(valueBytes(shape, dtype));
    };
    return source.names().reduce((total, n) => total + bytes(n), 0);
  } finally {
    source.close();
  }
}

/**
 * A GGUF file's tensors on the device: quantized matrices as their blocks, everything else in `dtype`; all in
 * `dtype` for a pooling model, whose quantized tensors are dequantized at load (pooling-load.ts).
 */
function ggufWeights(
  path: string,
  dtype: DType,
  dequantized: boolean,
): { bytes: number; blockTypes: QuantType[]; expertScratchBytes: number } {
  let bytes = 0;
  let expertScratchBytes = 0;
  const types = new Set<QuantType>();
  const tensors = ggufHeader(path).tensors;
  for (const t of tensors.values()) {
    const stored = t.type.stored;
    // Matrices and stacked experts stay in blocks, but for a layer's gate and up experts of two types (packed as one
    // stack, which the device keeps as values).
    const pair = /ffn_(gate|up)_exps/.exec(t.name);
    const packedWith = pair
      ? tensors.get(t.name.replace(pair[0], `ffn_${pair[1] === 'gate' ? 'up' : 'gate'}_exps`))
      : undefined;
    const mixedStack = t.dims.length === 3 && packedWith !== undefined && packedWith.type !== t.type;
    const quantMatrix =
      !dequantized &&
      !mixedStack &&
      stored !== undefined &&
      isQuantType(stored) &&
      (t.dims.length === 2 || t.dims.length === 3);
    if (quantMatrix) types.add(stored);
    const values = valueBytes(t.dims, dtype);
    bytes += aligned(quantMatrix ? t.byteLength : values);
    // Kept in blocks, a layer's experts take the expert scratch as values: gate and up together, down alone.
    if (quantMatrix && t.dims.length === 3) {
      expertScratchBytes = Math.max(expertScratchBytes, packedWith ? 2 * values : values);
    }
  }
  return { bytes, blockTypes: [...types], expertScratchBytes };
}
