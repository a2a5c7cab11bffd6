import { type CudaKvQuant, KV_QUANT_DEFINE } from './kv-layout.ts';

/** The attention kernels' tile shapes, and the shared memory, occupancy and split-KV sizes that follow from them. */

/** flash_prefill's tile shape: `warps` warps of `mTiles` 16-row tiles each, K/V tiles of `blockN` keys. */
export interface PrefillConfig {
  warps: number;
  mTiles: number;
  blockN: number;
}
export const DEFAULT_PREFILL: PrefillConfig = { warps: 8, mTiles: 2, blockN: 64 };
/**
 * Head size 256 (Gemma): O alone takes 128 fp32 registers a thread, and a tile's rows cost twice the shared memory,
 * so 4 warps of one row tile each (64 query rows, Q re-read from shared memory) over 64-key tiles: 169 KB.
 */
export const PREFILL_HD256: PrefillConfig = { warps: 4, mTiles: 1, blockN: 64 };
/**
 * flash_prefill_sm90a's build for a head size (PAGODA_WGMMA_*): keys per K/V tile, the K/V ring's stages, and its
 * pipelining: FA3's intra-warpgroup overlap (a tile's softmax under the previous tile's P V) and the two consumer
 * warpgroups' ping-pong (one's softmax under the other's products).
 */
export interface Sm90aPrefillConfig {
  blockN: number;
  stages: number;
  overlap: boolean;
  pingpong: boolean;
}
/** Query rows per CTA (two consumer warpgroups of 64) and threads per CTA (and a producer warpgroup). */
export const SM90A_PREFILL = { blockM: 128, threads: 384 } as const;
/** Dynamic shared memory one Hopper block may take (227 KB). */
export const SM90_MAX_BLOCK_SMEM = 227 * 1024;
/**
 * The launcher's build: 128-key tiles, two stages at head size 128 (161 KB) and four at 64 (145 KB); head size 256
 * keeps O in 128 registers a thread, so its S tile is 64 keys wide (193 KB). No overlap and no ping-pong: the build
 * the GPU tests first passed with; bench/kernels.ts times the pipelined builds (sm90aPrefillSweep) beside it.
 */
export function sm90aPrefillConfig(headDim: number): Sm90aPrefillConfig {
  const ring = headDim === 256 ? { blockN: 64, stages: 2 } : { blockN: 128, stages: headDim === 64 ? 4 : 2 };
  return { ...ring, overlap: false, pingpong: false };
}
/** Rings tried with both pipelining features on, besides the default's: deeper, or narrower and deeper. */
const SWEEP_RINGS: Record<number, { blockN: number; stages: number }[]> = {
  64: [
    { blockN: 128, stages: 6 },
    { blockN: 64, stages: 4 },
  ],
  128: [
    { blockN: 128, stages: 3 },
    { blockN: 64, stages: 4 },
  ],
  256: [],
};
/**
 * The builds bench/kernels.ts times side by side and test/gpu/attention-sm90a.test.ts checks against float64: the
 * default first, then its ring with each combination of overlap and ping-pong, then other rings with both.
 */
export function sm90aPrefillSweep(headDim: number): Sm90aPrefillConfig[] {
  const base = sm90aPrefillConfig(headDim);
  const pipelined = [
    { overlap: false, pingpong: true },
    { overlap: true, pingpong: false },
    { overlap: true, pingpong: true },
  ].map((p) => ({ ...base, ...p }));
  const rings = (SWEEP_RINGS[headDim] ?? []).map((r) => ({ ...r, overlap: true, pingpong: true }));
  return [base, ...pipelined, ...rings];
}
/** The consumers' Q tiles and the K/V ring, plus 1 KB the kernel may skip to align its tiles to 1024 bytes. */
export function sm90aPrefillSharedBytes(
  headDim: number,
  cfg: Sm90aPrefillConfig = sm90aPrefillConfig(headDim),
): number {
  return SM90A_PREFILL.blockM * headDim * 2 + cfg.stages * 2 * cfg.blockN * headDim * 2 + 1024;
}
/** A build's name in bench tables and test names. */
export function sm90aConfigName(cfg: Sm90aPrefillConfig): string {
  const pipelining = [cfg.overlap && 'overlap', cfg.pingpong && 'pingpong'].filter(Boolean).join('+') || 'plain';
  return `bn${cfg.blockN} s${cfg.stages} ${pipelining}`;
}
/** paged_decode's shape: warps per CTA, keys per warp tile, cp.async ring depth (PAGODA_DECODE_*). */
export interface DecodeConfig {
  warps: number;
  tileN: number;
  stages: number;
}
/**
 * 16-key tiles, three in flight: on an H100 (bench/kernels.ts --decode-configs, bf16) even with 32-key tiles two deep
 * at B64 x 4,096 (0.363 against 0.361 ms) and faster at the offline run's shorter contexts (B256 x 1,024 0.363 against
 * 0.366, B256 x 512 0.189 against 0.201): two CTAs fit an SM instead of one, so one's ramp overlaps the other's loads.
 * A quantized cache reads its bytes straight into fragments at head sizes 64, 128 and 256 (kv_decode_frags.cuh).
 */
export const DEFAULT_DECODE: DecodeConfig = { warps: 4, tileN: 16, stages: 3 };
/** Head size 256: 16-key warp tiles keep the K/V rings at 143 KB (32-key tiles would need 279 KB). */
export const DECODE_HD256: DecodeConfig = { warps: 4, tileN: 16, stages: 2 };
/**
 * 32-key tiles, two deep: every quantized cache below head size 256. At head size 80 a 16-key tile's 16-byte chunks do
 * not divide among a warp's lanes; at 128, timed on an H100 (bench/kernels.ts, GQA 32/8 B64 x 4,096), fp8 took 0.201
 * ms against 0.234 with 16-key tiles three deep and q8_0 0.220 against 0.222: the fragment path's byte reads are half
 * as many per key and a key tile's ring wait is paid half as often.
 */
export const DECODE_WIDE_TILES: DecodeConfig = { warps: 4, tileN: 32, stages: 2 };

/** The tile shapes a head size (and cache type) runs with unless the caller overrides them. */
export function defaultConfigs(headDim: number, quant?: CudaKvQuant): { prefill: PrefillConfig; decode: DecodeConfig } {
  if (headDim === 256) return { prefill: PREFILL_HD256, decode: DECODE_HD256 };
  return { prefill: DEFAULT_PREFILL, decode: quant ? DECODE_WIDE_TILES : DEFAULT_DECODE };
}
/** Split-KV decode's limits. */
export const DECODE = { maxSplits: 32, minKeysPerSplit: 256 } as const;
/**
 * paged_decode's registers per thread for the occupancy estimate, by head size and tile keys: [16-bit cache, fp8,
 * q8_0] (ptxas -v, CUDA 13.0, sm_90, bf16). A build not listed counts 255, the most a thread can hold.
 */
const DECODE_REGS: Readonly<Record<string, readonly number[]>> = {
  '64:16': [104, 110, 117],
  '64:32': [138, 128, 142],
  '80:16': [130],
  '80:32': [164, 165],
  '96:16': [152, 142],
  '96:32': [193, 179],
  '128:16': [163, 164, 178],
  '128:32': [197, 182, 188],
  '256:16': [250, 254, 255],
};
export function decodeRegsPerThread(headDim: number, cfg: DecodeConfig, quant?: CudaKvQuant): number {
  const column = quant ? KV_QUANT_DEFINE[quant] : 0;
  return DECODE_REGS[`${headDim}:${cfg.tileN}`]?.[column] ?? 255;
}

/** Bytes of one key's row in the K/V copy buffers: 16-bit rows padded by 8 elements, or the quantized bytes + 16. */
const rowBytes = (headDim: number, quant?: CudaKvQuant) => (quant ? headDim + 16 : (headDim + 8) * 2);
/** Bytes of one key's q8_0 scales for one head (a half per 32 values). */
const scaleBytes = (headDim: number, quant?: CudaKvQuant) => (quant === 'q8_0' ? headDim / 16 : 0);

export function prefillSharedBytes(headDim: number, cfg: PrefillConfig = DEFAULT_PREFILL, quant?: CudaKvQuant): number {
  // Q tile, double-buffered K and V tiles, double-buffered block ids of a K/V tile; a quantized cache adds the
  // dequantized K and V tiles and double-buffered q8_0 scales (kernels/flash_prefill.cu).
  const q = 16 * cfg.warps * cfg.mTiles * (headDim + 8) * 2;
  const dequant = quant ? 2 * cfg.blockN * (headDim + 8) * 2 + 4 * cfg.blockN * scaleBytes(headDim, quant) : 0;
  return q + 4 * cfg.blockN * rowBytes(headDim, quant) + dequant + 2 * (cfg.blockN / 16) * 4;
}

/** Whether paged_decode reads a quantized cache's bytes straight into its fragments (kernels/kv_decode_frags.cuh). */
export const decodesQuantInRegisters = (headDim: number, quant?: CudaKvQuant) => !!quant && headDim % 64 === 0;

export function decodeSharedBytes(headDim: number, cfg: DecodeConfig = DEFAULT_DECODE, quant?: CudaKvQuant): number {
  // The query tile, then per warp its ring of K and V tiles; a quantized cache adds the ring's q8_0 scales and,
  // unless its bytes go straight into fragments, one dequantized tile (kernels/paged_decode.cu).
  const ring = cfg.stages * 2 * cfg.tileN * (rowBytes(headDim, quant) + scaleBytes(headDim, quant));
  const dequant = quant && !decodesQuantInRegisters(headDim, quant) ? cfg.tileN * (headDim + 8) * 2 : 0;
  return 16 * (headDim + 8) * 2 + cfg.warps * (ring + dequant);
}

/** Decode CTAs resident per SM (H100/A100: 228 KB shared memory and 64K registers per SM; registers: DECODE_REGS). */
export function decodeCtasPerSm(headDim: number, cfg: DecodeConfig = DEFAULT_DECODE, quant?: CudaKvQuant): number {
  const bySmem = Math.floor((228 * 1024) / (decodeSharedBytes(headDim, cfg, quant) + 1024));
  // Registers are allocated 8 at a time per thread (256 per warp).
  const regs = Math.ceil(decodeRegsPerThread(headDim, cfg, quant) / 8) * 8;
  const byRegs = Math.floor(65536 / (32 * cfg.warps * regs));
  return Math.max(1, Math.min(bySmem, byRegs));
}

/** Bytes of `partialO` and `partialLse` for up to `numSeqs` sequences. */
export function decodeWorkspaceBytes(numSeqs: number, numHeads: number, headDim: number, maxSplits = DECODE.maxSplits) {
  return { partialO: numSeqs * numHeads * maxSplits * headDim * 4, partialLse: numSeqs * numHeads * maxSplits * 4 };
}

/**
 * How many pieces to cut each sequence's context into: 1 while (sequences x KV heads x head groups) CTAs fill the
 * GPU, otherwise enough to fill it, with at least `minKeysPerSplit` keys each. It depends on the batch and the
 * capacity `maxContext` (not the current lengths), so a captured CUDA graph stays valid as contexts grow.
 */
export function decodeSplits(p: {
  numSeqs: number;
  numHeads: number;
  numKvHeads: number;
  maxContext: number;
  smCount: number;
  ctasPerSm: number;
  maxSplits?: number;
}): number {
  const { numSeqs, numHeads, numKvHeads, maxContext, maxSplits = DECODE.maxSplits } = p;
  const ctas = numSeqs * numKvHeads * Math.ceil(numHeads / numKvHeads / 16);
  const target = p.smCount * p.ctasPerSm;
  if (ctas >= target) return 1;
  const byContext = Math.max(1, Math.floor(maxContext / DECODE.minKeysPerSplit));
  return Math.max(1, Math.min(Math.ceil(target / ctas), byContext, maxSplits));
}
