import type { Tensor } from '../backend.ts';
import { QuantCpuTensor } from './quant-tensor.ts';
import { CpuTensor, cpu, rowsCols } from './tensor.ts';

/**
 * Rows `ids` of an embedding table `[rows, dim]`; a quantized table's rows are dequantized as they are gathered. With
 * `rowOffset` the table is one rank's slice of a vocabulary-parallel table, holding ids rowOffset..: others stay zero.
 */
export function gatherRows(table: Tensor, ids: Int32Array, what: string, rowOffset?: number): CpuTensor {
  const [rows, dim] = rowsCols(table);
  const out = CpuTensor.zeros([ids.length, dim]);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]! - (rowOffset ?? 0);
    if (rowOffset !== undefined && (id < 0 || id >= rows)) continue;
    if (id < 0 || id >= rows) throw new Error(`embedding: ${what} value ${id} outside the table's ${rows} rows`);
    if (table instanceof QuantCpuTensor) table.dequantizeRow(id, out.data, t * dim);
    else out.data.set(cpu(table).data.subarray(id * dim, (id + 1) * dim), t * dim);
  }
  return out;
}
