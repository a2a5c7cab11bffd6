import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, DType, HostTensor, Tensor, WeightLoadOptions } from '../backend/backend.ts';
import { fp8Bytes, fp8Fits } from '../backend/cuda/fp8.ts';
import { DTYPE_BYTES } from '../backend/cuda/tensor.ts';
import { keepsFp8 } from '../loader/fp8-weights.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { parseQuantizationConfig } from '../loader/quantization-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';
import { loadDummyModel } from '../models/dummy.ts';
import { loadPoolingModel } from '../models/pooling-load.ts';
import { FP8_QUANTIZATION } from '../primitives/quant/mix.ts';

/** A stand-in backend that only counts the bytes the model's weights take in `dtype` (FP8 where asked and fitting). */
function countingBackend(dtype: DType): { backend: Backend; bytes: () => number } {
  let bytes = 0;
  const loadWeight = (w: HostTensor, opts?: WeightLoadOptions): Tensor => {
    const fp8 = opts?.quantize === 'fp8' && fp8Fits(w.shape);
    bytes += fp8 ? fp8Bytes(w.shape) : Math.ceil((w.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype]) / 256) * 256;
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    return { shape, dtype };
  };
  const backend = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight') return loadWeight;
      if (key === 'name') return 'cuda';
      if (key === 'fp8Weights') return true;
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => {
        throw new Error(`weight counting: ${String(key)} called while building the model`);
      };
    },
  });
  return { backend, bytes: () => bytes };
}

/**
 * Bytes the weights of the model in `dir` take on the device in `dtype`, so they can be one allocation: counted
 * exactly by building the model (`pooling`: as an embedding or reranking model) on a counting backend for dummy
 * weights and for `fp8` (`--quantization fp8`: the checkpoint's shapes as config.json gives them), estimated from the
 * safetensors file sizes otherwise (headers make it a slight overestimate), or for an FP8 checkpoint from the tensors'
 * element counts (scales included): one byte per FP8 value where a card with FP8 keeps them, else dequantized.
 */
export function weightBytes(dir: string, dtype: DType, dummy: boolean, pooling = false, fp8 = false): number {
  if (dummy || fp8) {
    const c = countingBackend(dtype);
    if (pooling) loadPoolingModel(dir, c.backend, { dummy: true });
    else loadDummyModel(dir, c.backend, fp8 ? { quantization: FP8_QUANTIZATION } : {});
    return c.bytes();
  }
  const config = loadModelConfig(dir);
  const fp8Checkpoint = parseQuantizationConfig(config.raw, join(dir, 'config.json'));
  if (fp8Checkpoint) return checkpointBytes(dir, dtype, keepsFp8(fp8Checkpoint));
  const stored = config.dtype === 'float32' ? 4 : 2;
  let total = 0;
  for (const f of readdirSync(dir)) if (f.endsWith('.safetensors')) total += statSync(join(dir, f)).size;
  return Math.ceil((total * DTYPE_BYTES[dtype]) / stored);
}

function checkpointBytes(dir: string, dtype: DType, keepFp8: boolean): number {
  const source = openSafetensors(dir);
  try {
    const bytes = (n: string) => {
      const { shape, dtype: stored } = source.describe(n);
      if (keepFp8 && stored === 'f8_e4m3' && fp8Fits(shape)) return fp8Bytes(shape);
      return Math.ceil((shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype]) / 256) * 256;
    };
    return source.names().reduce((total, n) => total + bytes(n), 0);
  } finally {
    source.close();
  }
}
