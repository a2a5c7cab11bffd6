/**
 * The byte layout of cuLaunchKernelEx's arguments on 64-bit Linux (cuda.h, CUDA 12.x/13.x):
 *
 *   struct CUlaunchConfig { u32 gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
 *                           CUstream hStream; CUlaunchAttribute *attrs; u32 numAttrs; }            // 56 bytes
 *   struct CUlaunchAttribute { CUlaunchAttributeID id; char pad[4]; CUlaunchAttributeValue value; } // 72 bytes
 *   union CUlaunchAttributeValue { char pad[64]; ...; int programmaticStreamSerializationAllowed; ... }
 *
 * test/backend/launch-config.test.ts checks these offsets against cuda.h with the C compiler when both are there.
 */

export const LAUNCH_CONFIG = {
  bytes: 56,
  gridDimX: 0,
  blockDimX: 12,
  sharedMemBytes: 24,
  hStream: 32,
  attrs: 40,
  numAttrs: 48,
} as const;

export const LAUNCH_ATTRIBUTE = { bytes: 72, id: 0, value: 8 } as const;

/** CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: the kernel may start before its predecessor ends. */
export const ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

/** Writes the fixed part of a config: the stream and the attribute list (addresses as BigInt). */
export function writeLaunchTarget(view: DataView, stream: bigint, attrs: bigint, numAttrs: number): void {
  view.setBigUint64(LAUNCH_CONFIG.hStream, stream, true);
  view.setBigUint64(LAUNCH_CONFIG.attrs, attrs, true);
  view.setUint32(LAUNCH_CONFIG.numAttrs, numAttrs, true);
  view.setUint32(LAUNCH_CONFIG.numAttrs + 4, 0, true);
}

/** Writes the per-launch part of a config: grid, block and dynamic shared memory (7 consecutive u32). */
export function writeLaunchShape(
  view: DataView,
  grid: readonly [number, number?, number?],
  block: readonly [number, number?, number?],
  smem: number,
): void {
  view.setUint32(0, grid[0], true);
  view.setUint32(4, grid[1] ?? 1, true);
  view.setUint32(8, grid[2] ?? 1, true);
  view.setUint32(12, block[0], true);
  view.setUint32(16, block[1] ?? 1, true);
  view.setUint32(20, block[2] ?? 1, true);
  view.setUint32(LAUNCH_CONFIG.sharedMemBytes, smem, true);
}

/** Writes one CUlaunchAttribute at `offset`: programmatic stream serialization allowed. */
export function writeProgrammaticSerialization(view: DataView, offset: number): void {
  for (let i = 0; i < LAUNCH_ATTRIBUTE.bytes; i += 4) view.setUint32(offset + i, 0, true);
  view.setUint32(offset + LAUNCH_ATTRIBUTE.id, ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true);
  view.setInt32(offset + LAUNCH_ATTRIBUTE.value, 1, true);
}
