import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, DType, HostTensor, Tensor } from '../backend/backend.ts';
import { DTYPE_BYTES } from '../backend/cuda/tensor.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { parseQuantizationConfig } from '../loader/quantization-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';
import { loadDummyModel } from '../models/dummy.ts';
import { loadPoolingModel } from '../models/pooling-load.ts';

/** A stand-in backend that only counts the bytes the model's weights take in `dtype`. */
function countingBackend(dtype: DType): { backend: Backend; bytes: () => number } {
  let bytes = 0;
  const loadWeight = (w: HostTensor, opts?: { transpose?: boolean }): Tensor => {
    bytes += Math.ceil((w.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype]) / 256) * 256;
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    return { shape, dtype };
  };
  const backend = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight') return loadWeight;
      if (key === 'name') return 'cuda';
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
 * weights, estimated from the safetensors file sizes otherwise (headers make it a slight overestimate), or for an
 * FP8 checkpoint, whose one-byte weights are dequantized, from the tensors' element counts (scales included).
 */
export function weightBytes(dir: string, dtype: DType, dummy: boolean, pooling = false): number {
  if (dummy) {
    const c = countingBackend(dtype);
    if (pooling) loadPoolingModel(dir, c.backend, { dummy: true });
    else loadDummyModel(dir, c.backend);
    return c.bytes();
  }
  const config = loadModelConfig(dir);
  if (parseQuantizationConfig(config.raw, join(dir, 'config.json'))) return dequantizedBytes(dir, dtype);
  const stored = config.dtype === 'float32' ? 4 : 2;
  let total = 0;
  for (const f of readdirSync(dir)) if (f.endsWith('.safetensors')) total += statSync(join(dir, f)).size;
  return Math.ceil((total * DTYPE_BYTES[dtype]) / stored);
}

function dequantizedBytes(dir: string, dtype: DType): number {
  const source = openSafetensors(dir);
  try {
    const elements = (n: string) => source.describe(n).shape.reduce((a, d) => a * d, 1);
    return source.names().reduce((total, n) => total + Math.ceil((elements(n) * DTYPE_BYTES[dtype]) / 256) * 256, 0);
  } finally {
    source.close();
  }
}
