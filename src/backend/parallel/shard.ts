import type { HostTensor } from '../backend.ts';
import type { ShardSpec } from '../shard-spec.ts';

/**
 * Rank `rank`'s share of a stored weight under `spec` (see ShardSpec), in the stored dtype. A weight stored without
 * bytes (dummy weights) gets a share without bytes, in the share's shape.
 */
export function shardHost(w: HostTensor, spec: ShardSpec, rank: number, ranks: number): HostTensor {
  if (spec.split === 'replicate' || ranks === 1) return w;
  const name = `${w.name} (rank ${rank} of ${ranks})`;
  if (spec.split === 'first') {
    return rank === 0 ? w : { ...w, name, bytes: new Uint8Array(w.shape.reduce((a, d) => a * d, 1) * elementBytes(w)) };
  }
  if (spec.split === 'in') return shardColumns(w, name, rank, ranks);
  const rows = w.shape[0]!;
  const parts = (spec.split === 'out' && spec.parts) || [{ rows, pieces: ranks }];
  if (parts.reduce((a, p) => a + p.rows, 0) !== rows) {
    throw new Error(`${w.name}: shard parts [${parts.map((p) => p.rows)}] do not add up to its ${rows} rows`);
  }
  const rowBytes = w.bytes.byteLength / rows;
  const ranges: [start: number, count: number][] = [];
  let start = 0;
  for (const { rows: partRows, pieces } of parts) {
    if (partRows % pieces !== 0 || ranks % pieces !== 0) {
      throw new Error(`${w.name}: ${partRows} rows cannot be cut into ${pieces} pieces over ${ranks} ranks`);
    }
    const count = partRows / pieces;
    ranges.push([start + Math.floor((rank * pieces) / ranks) * count, count]);
    start += partRows;
  }
  const shareRows = ranges.reduce((a, [, n]) => a + n, 0);
  const bytes = new Uint8Array(w.bytes.byteLength === 0 ? 0 : shareRows * rowBytes);
  let offset = 0;
  for (const [first, count] of ranges) {
    if (bytes.length) bytes.set(w.bytes.subarray(first * rowBytes, (first + count) * rowBytes), offset);
    offset += count * rowBytes;
  }
  return { ...w, name, shape: [shareRows, ...w.shape.slice(1)], bytes };
}

/** The `in` split: each row's slice of columns. */
function shardColumns(w: HostTensor, name: string, rank: number, ranks: number): HostTensor {
  if (w.shape.length !== 2) throw new Error(`${w.name}: only a 2-D weight splits by input features`);
  const [rows, cols] = w.shape as [number, number];
  if (cols % ranks !== 0) throw new Error(`${w.name}: ${cols} columns cannot be split over ${ranks} ranks`);
  const share = cols / ranks;
  const size = elementBytes(w);
  const bytes = new Uint8Array(w.bytes.byteLength === 0 ? 0 : rows * share * size);
  for (let r = 0; bytes.length && r < rows; r++) {
    const from = (r * cols + rank * share) * size;
    bytes.set(w.bytes.subarray(from, from + share * size), r * share * size);
  }
  return { ...w, name, shape: [rows, share], bytes };
}

function elementBytes(w: HostTensor): number {
  return w.dtype === 'f32' ? 4 : 2;
}
