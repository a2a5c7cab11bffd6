import { isKvQuant, KV_QUANT_BLOCK, type KvQuant } from '../../primitives/kv-cache-type.ts';

/**
 * The CUDA backend's quantized KV cache layouts (kernels/kv_quant.cuh). Per layer, K and V each hold a values plane
 * `[numBlocks, blockSize, numKvHeads, headDim]` of one byte per value (fp8 e4m3, or q8_0's int8), and q8_0 adds a
 * scales plane `[numBlocks, blockSize, numKvHeads * headDim / 32]` of halves: ggml's q8_0 block split in two, so the
 * attention kernels load the values as 16-byte chunks. A slot's values decode to the CPU twin's exactly.
 */
export type CudaKvQuant = Extract<KvQuant, 'fp8' | 'q8_0'>;

/** The kernels' PAGODA_KV_QUANT for each stored form (0: the compute dtype). */
export const KV_QUANT_DEFINE: Record<CudaKvQuant, number> = { fp8: 1, q8_0: 2 };

/** The kernels' define for a `quant` cache's builds (none for the compute-dtype cache, whose builds stay as they were). */
export function kvQuantDefines(quant: CudaKvQuant | undefined): Record<string, number> {
  return quant ? { PAGODA_KV_QUANT: KV_QUANT_DEFINE[quant] } : {};
}

/** The quantized types the CUDA backend stores (q4_0 keeps the float cache: runner/kv-cache-choice.ts). */
export function isCudaKvQuant(quant: string | undefined): quant is CudaKvQuant {
  return isKvQuant(quant) && quant !== 'q4_0';
}

/**
 * Whether the tensor-core attention kernels read a `quant` cache's heads of `headDim` (q8_0: whole 64-value heads,
 * so a head's scales copy as 4, 8 or 16 bytes; heads of 80 and 96 go to the simple kernel).
 */
export function tilesReadQuant(quant: CudaKvQuant | undefined, headDim: number): boolean {
  return quant !== 'q8_0' || headDim % 64 === 0;
}

/** Bytes of one slot's row (`row` = numKvHeads × headDim values) in each plane of a K or V cache. */
export function slotBytes(quant: CudaKvQuant | undefined, row: number, dtypeBytes: number) {
  if (!quant) return { values: row * dtypeBytes, scales: 0 };
  return { values: row, scales: quant === 'q8_0' ? (row / KV_QUANT_BLOCK.q8_0) * 2 : 0 };
}

/** Planes start on 256-byte boundaries (the kernels copy 16-byte chunks; allocations are 256-aligned). */
const align = (n: number) => Math.ceil(n / 256) * 256;

/** Where each plane of a layer sits in the cache's one allocation, and the allocation's size. */
export function kvPlaneOffsets(
  spec: { numLayers: number; numBlocks: number; blockSize: number; numKvHeads: number; headDim: number },
  quant: CudaKvQuant | undefined,
  dtypeBytes: number,
) {
  const slots = spec.numBlocks * spec.blockSize;
  const per = slotBytes(quant, spec.numKvHeads * spec.headDim, dtypeBytes);
  const values = align(slots * per.values);
  const scales = align(slots * per.scales);
  const layerBytes = 2 * values + 2 * scales;
  const layers = Array.from({ length: spec.numLayers }, (_, l) => {
    const base = l * layerBytes;
    return { k: base, v: base + values, kScales: base + 2 * values, vScales: base + 2 * values + scales };
  });
  return { layers, valuesBytes: values, scalesBytes: scales, totalBytes: spec.numLayers * layerBytes };
}

/** Bytes of KV cache per block (K and V, every layer, scales included). */
export function kvBlockBytesOf(
  spec: { numLayers: number; blockSize: number; numKvHeads: number; headDim: number },
  quant: CudaKvQuant | undefined,
  dtypeBytes: number,
): number {
  const per = slotBytes(quant, spec.numKvHeads * spec.headDim, dtypeBytes);
  return 2 * spec.numLayers * spec.blockSize * (per.values + per.scales);
}

/**
 * The CUDA planes of q8_0 rows as the CPU twin stores them (ggml blocks: a half scale, then 32 int8s): `slots` rows
 * of `row` values become the values plane and the scales plane (half bits), so tests compare stored bytes.
 */
export function q8PlanesOf(
  blocks: Uint8Array,
  slots: number,
  row: number,
): { values: Uint8Array; scales: Uint16Array } {
  const n = KV_QUANT_BLOCK.q8_0;
  const perRow = row / n;
  const values = new Uint8Array(slots * row);
  const scales = new Uint16Array(slots * perRow);
  for (let b = 0; b < slots * perRow; b++) {
    const at = b * (n + 2);
    scales[b] = blocks[at]! | (blocks[at + 1]! << 8);
    values.set(blocks.subarray(at + 2, at + 2 + n), b * n);
  }
  return { values, scales };
}
