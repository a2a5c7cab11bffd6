import { isQuantType, type QuantType } from '../ggml-types.ts';
import type { HostTensor } from '../host-tensor.ts';
import { concatHostTensors, hostByteLength, readHostBytes } from '../lazy-tensor.ts';
import { quantBytes } from './index.ts';

/** Consecutive host tensors of one quant type in a stacked weight: its rows, their bytes each, and the tensors. */
export interface QuantStackGroup {
  readonly type: QuantType;
  readonly rows: number;
  readonly rowBytes: number;
  readonly hosts: readonly HostTensor[];
}

/**
 * A quantized weight as the matrix of its rows: experts' matrices stacked `[E, R, cols]` (a GGUF's `ffn_*_exps`) as
 * `[E · R, cols]`, expert e's rows from e · R; a 2-D weight as it is. A file's bytes stay in the file.
 */
export function asRowMatrix(w: HostTensor): HostTensor {
  if (w.shape.length === 2) return w;
  const rows = w.shape.slice(0, -1).reduce((a, d) => a * d, 1);
  return concatHostTensors(w.name, [rows, w.shape.at(-1)!], w.dtype, [w]);
}

/**
 * How 2-D quantized host tensors of one column count stack into one `[rows, cols]` weight: runs of one type join,
 * and a packed q/k/v or gate/up whose parts have different types (llama.cpp's mixes give v more bits than q and k)
 * keeps one group per run. Every backend that keeps blocks lays its parts out this way.
 */
export function quantStackGroups(parts: readonly HostTensor[]): QuantStackGroup[] {
  const cols = parts[0]!.shape[1]!;
  const runs: { type: QuantType; hosts: HostTensor[] }[] = [];
  for (const h of parts) {
    if (!isQuantType(h.dtype) || h.shape.length !== 2 || h.shape[1] !== cols) {
      throw new Error(`${h.name}: [${h.shape}] ${h.dtype} cannot be stacked with quantized rows of ${cols} columns`);
    }
    const last = runs.at(-1);
    if (last?.type === h.dtype) last.hosts.push(h);
    else runs.push({ type: h.dtype, hosts: [h] });
  }
  return runs.map(({ type, hosts }) => ({
    type,
    rows: hosts.reduce((a, h) => a + h.shape[0]!, 0),
    rowBytes: quantBytes(type, cols, hosts[0]!.name),
    hosts,
  }));
}

/**
 * Copies the `rows` x `rowBytes` blocks of a group's host tensor `h`, checked to be all there, into the start of
 * `dst` (straight from the file for a lazy tensor: no buffer in between), and returns how many bytes that was.
 */
export function readGroupBlocks(h: HostTensor, g: QuantStackGroup, dst: Uint8Array): number {
  const size = groupBlockBytes(h, g);
  readHostBytes(h, dst.subarray(0, size), 0);
  return size;
}

/** Bytes of the `rows` x `rowBytes` blocks of a group's host tensor `h`, checked to be all there. */
export function groupBlockBytes(h: HostTensor, g: QuantStackGroup): number {
  const size = h.shape[0]! * g.rowBytes;
  const stored = hostByteLength(h);
  if (stored < size) throw new Error(`${h.name}: ${g.type} needs ${size} bytes, has ${stored}`);
  return size;
}
