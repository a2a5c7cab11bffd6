import type { HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { QuantCpuTensor } from '../../src/backend/cpu/quant-tensor.ts';

/** The CPU backend, keeping the quantized weights it made (2-D matrices, and experts stacked as `[E · rows, cols]`). */
export class RecordingCpu extends CpuBackend {
  readonly quantized: QuantCpuTensor[] = [];
  override loadStacked(parts: readonly HostTensor[]): Tensor {
    const w = super.loadStacked(parts);
    if (w instanceof QuantCpuTensor) this.quantized.push(w);
    return w;
  }
}
