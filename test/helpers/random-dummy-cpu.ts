import type { HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { mulberry32 } from '../../src/util/random.ts';

/**
 * The CPU backend for `--load-format dummy` weights (no bytes): each is filled with seeded random values in
 * [-amplitude, amplitude), as the CUDA backend fills them on the device, so a model built from config.json alone can run.
 */
export class RandomDummyCpu extends CpuBackend {
  private readonly random: () => number;

  constructor(
    seed: number,
    private readonly amplitude = 0.5,
  ) {
    super({ threads: 1 });
    this.random = mulberry32(seed);
  }

  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    if (w.bytes.byteLength > 0) return super.loadWeight(w, opts);
    const values = Float32Array.from(
      { length: w.shape.reduce((a, d) => a * d, 1) },
      () => (this.random() * 2 - 1) * this.amplitude,
    );
    return super.loadWeight({ ...w, dtype: 'f32', bytes: new Uint8Array(values.buffer) }, opts);
  }
}
