import type { Backend, Tensor } from '../backend.ts';

/**
 * The collectives tensor parallelism needs, over one tensor per rank (rank order). `NcclCommunicator` implements it
 * on CUDA devices (cuda/nccl-communicator.ts); `HostCommunicator` simulates it through host memory.
 */
export interface Communicator {
  /** Frees what the collectives hold (NCCL's communicators), after the rank backends were released. */
  release?(): void;
  /** The elementwise sum of every rank's tensor, on every rank. */
  allReduce(parts: readonly Tensor[]): Tensor[];
  /** Every rank's `[T, c]` side by side in rank order → `[T, N·c]` on every rank. */
  allGather(parts: readonly Tensor[]): Tensor[];
}

/** Collectives through host memory: each rank's tensor read back, combined in rank order (deterministic), uploaded. */
export class HostCommunicator implements Communicator {
  constructor(private readonly ranks: readonly Backend[]) {}

  allReduce(parts: readonly Tensor[]): Tensor[] {
    const host = parts.map((t, r) => this.ranks[r]!.toHost(t));
    const sum = new Float64Array(host[0]!.length);
    for (const h of host) for (let i = 0; i < h.length; i++) sum[i]! += h[i]!;
    return this.upload(parts[0]!.shape, Float32Array.from(sum));
  }

  allGather(parts: readonly Tensor[]): Tensor[] {
    const host = parts.map((t, r) => this.ranks[r]!.toHost(t));
    const cols = parts[0]!.shape.at(-1)!;
    const rows = host[0]!.length / cols;
    const width = cols * parts.length;
    const out = new Float32Array(rows * width);
    for (const [r, h] of host.entries()) {
      for (let t = 0; t < rows; t++) out.set(h.subarray(t * cols, (t + 1) * cols), t * width + r * cols);
    }
    return this.upload([...parts[0]!.shape.slice(0, -1), width], out);
  }

  private upload(shape: readonly number[], data: Float32Array): Tensor[] {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return this.ranks.map((b) => b.loadWeight({ name: 'collective result', shape: [...shape], dtype: 'f32', bytes }));
  }
}
