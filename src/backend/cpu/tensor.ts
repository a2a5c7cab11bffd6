import { mulberry32 } from '../../util/random.ts';
import type { Tensor } from '../backend.ts';
import { QuantCpuTensor } from './quant-tensor.ts';

/** A row-major float32 tensor in host memory. */
export class CpuTensor implements Tensor {
  readonly dtype = 'f32' as const;
  constructor(
    readonly shape: readonly number[],
    readonly data: Float32Array,
  ) {
    const n = shape.reduce((a, d) => a * d, 1);
    if (n !== data.length) throw new Error(`tensor shape [${shape}] holds ${n} elements, data has ${data.length}`);
  }

  static zeros(shape: readonly number[]): CpuTensor {
    return new CpuTensor(shape, new Float32Array(shape.reduce((a, d) => a * d, 1)));
  }
}

/** The CPU tensor behind a `Tensor`; a tensor from another backend is a programming error. */
export function cpu(t: Tensor): CpuTensor {
  if (t instanceof QuantCpuTensor) throw new Error('a quantized weight serves linear() and embedding() only');
  if (!(t instanceof CpuTensor)) throw new Error('tensor does not belong to the CPU backend');
  return t;
}

/** `[rows, cols]` of a tensor seen as a matrix over its last dimension. */
export function rowsCols(t: Tensor): [number, number] {
  const cols = t.shape[t.shape.length - 1] ?? 1;
  const rows = t.shape.length ? t.shape.reduce((a, d) => a * d, 1) / cols : 1;
  return [rows, cols];
}

/**
 * `--load-format dummy` values for a tensor stored without bytes, as the CUDA backend makes them: 1 for a vector
 * (norm weights), uniform in ±1/√cols for a matrix, so activations keep their scale through the layers.
 */
export function dummyValues(shape: readonly number[], seed: number, out?: Float32Array): Float32Array {
  const n = shape.reduce((a, d) => a * d, 1);
  const values = out ?? new Float32Array(n);
  if (shape.length === 1) return values.fill(1);
  const rnd = mulberry32(seed);
  const scale = 1 / Math.sqrt(shape[shape.length - 1]!);
  for (let i = 0; i < n; i++) values[i] = (2 * rnd() - 1) * scale;
  return values;
}
