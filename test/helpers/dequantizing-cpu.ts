import type { HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { quantizeQ8Groups } from '../../src/backend/cpu/quant-act.ts';
import { isQuantType } from '../../src/primitives/ggml-types.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';

/**
 * What the CUDA integer GEMV multiplies x by: its 8-bit levels times their group's d (quantizeQ8Groups, the CPU twin
 * of the device's activation quantization).
 */
export function q8RoundTrip(x: Float32Array): Float32Array {
  const q = quantizeQ8Groups(x);
  return Float32Array.from(q.levels, (l, i) => l * q.d[i >> 5]!);
}

/** A host tensor's values as float32 (a quantized one dequantized by the CPU codecs). */
export function asFloat(h: HostTensor): HostTensor {
  if (!isQuantType(h.dtype)) return h;
  const v = toFloat32(h);
  return { ...h, dtype: 'f32', bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) };
}

/** Quantized parts stacked as one float32 weight (their rows in order). */
export function stackedAsFloat(parts: readonly HostTensor[]): HostTensor {
  const values = parts.map((p) => toFloat32(p));
  const all = new Float32Array(values.reduce((a, v) => a + v.length, 0));
  let at = 0;
  for (const v of values) {
    all.set(v, at);
    at += v.length;
  }
  const rows = parts.reduce((a, p) => a + p.shape[0]!, 0);
  return {
    name: parts.map((p) => p.name).join(' + '),
    shape: [rows, parts[0]!.shape[1]!],
    dtype: 'f32',
    bytes: new Uint8Array(all.buffer),
  };
}

/**
 * The CPU backend over a quantized model's weights dequantized at load: float products over exactly the values the
 * blocks hold, which is what the CUDA backend's quantized GEMV and dequantize + GEMM compute (the CPU backend's own
 * quantized linear quantizes each activation row to 8 bits first, as ggml does, which moves these random-weight
 * fixtures' logits by a few % of their range).
 */
export class DequantizingCpu extends CpuBackend {
  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    return super.loadWeight(asFloat(w), opts);
  }
  override loadStacked(parts: readonly HostTensor[]): Tensor {
    return super.loadWeight(stackedAsFloat(parts));
  }
}
