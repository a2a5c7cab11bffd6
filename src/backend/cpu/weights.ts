import { toFloat32 } from '../../primitives/host-tensor.ts';
import { fileExtentsOf, hostByteLength } from '../../primitives/lazy-tensor.ts';
import type { HostTensor, KvCacheSpec, LayerKvCache, Tensor } from '../backend.ts';
import { stackQuantized } from './quant-tensor.ts';
import { allocCpuKvCache } from './step-context.ts';
import { CpuTensor, dummyValues } from './tensor.ts';
import { CpuThreads, MIN_PARALLEL_MACS, type SharedOperand, sharedFloat32 } from './threads.ts';
import type { WasmArena } from './wasm/arena.ts';
import { simdArena } from './wasm/kernels.ts';
import { FILL_CHUNK, fillValues, runsOf } from './weight-fill.ts';

/**
 * Where one CPU backend's weights and KV caches live: shared memory when worker threads read them (quantized blocks
 * in WebAssembly memory for the SIMD kernels). It keeps a list of those buffers, so that `release` (its model
 * unloading) makes the process-wide worker threads drop their views of them and the memory can be freed.
 */
export class CpuWeights {
  private readonly arena: WasmArena | null;
  private readonly shared = new Set<SharedOperand>();
  private dummySeed = 1;

  constructor(
    private readonly threads: number,
    simd: boolean,
  ) {
    this.arena = simd ? simdArena() : null;
  }

  /** A weight as f32 values (a quantized one dequantized), transposed when asked. */
  loadFloat(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    const count = w.shape.reduce((a, d) => a * d, 1);
    // A weight big enough to split starts the workers now, so they boot while the rest of the model loads.
    if (this.threads > 1 && count >= MIN_PARALLEL_MACS) CpuThreads.get(this.threads);
    // Weights live in shared memory when worker threads will read them; stored values convert straight into it.
    const alloc = () => (this.threads > 1 ? this.own(sharedFloat32(count)) : new Float32Array(count));
    const dummy = hostByteLength(w) === 0;
    if (!opts?.transpose) {
      const out = dummy ? dummyValues(w.shape, this.dummySeed++, alloc()) : this.fill(w, alloc());
      return new CpuTensor([...w.shape], out);
    }
    const data = dummy ? dummyValues(w.shape, this.dummySeed++) : toFloat32(w);
    const out = alloc();
    if (w.shape.length !== 2) throw new Error(`${w.name}: only a 2-D weight can be transposed, shape [${w.shape}]`);
    const [r, c] = w.shape as [number, number];
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j];
    return new CpuTensor([c, r], out);
  }

  /**
   * A weight's values into `out`: a float tensor still in its file is read there a chunk at a time (no buffer the
   * size of the weight), by this thread until the worker pool has started, then by every thread when the weight is
   * worth splitting; anything else converts through toFloat32.
   */
  private fill(w: HostTensor, out: Float32Array): Float32Array {
    const dtype = w.dtype;
    const extents = fileExtentsOf(w);
    if (!extents || (dtype !== 'f32' && dtype !== 'bf16' && dtype !== 'f16')) return toFloat32(w, out);
    const split = this.threads > 1 && out.length >= MIN_PARALLEL_MACS && out.buffer instanceof SharedArrayBuffer;
    const pool = split ? CpuThreads.running(this.threads) : undefined;
    const runs = runsOf(extents);
    let done = 0;
    for (; done < out.length && !pool?.started(); done += FILL_CHUNK) {
      fillValues(runs, extents.length, dtype, out, done, Math.min(out.length, done + FILL_CHUNK));
    }
    if (done < out.length) pool!.fill(out, dtype, extents, done);
    return out;
  }

  loadStacked(parts: readonly HostTensor[]): Tensor {
    const w = stackQuantized(parts, this.threads > 1, this.arena);
    if (this.threads > 1 && w.shape[0] * w.shape[1] >= MIN_PARALLEL_MACS) CpuThreads.get(this.threads);
    for (const p of w.parts) {
      if (p.home) this.own(p.home.memory);
      if (p.bytes.buffer instanceof SharedArrayBuffer) this.own(p.bytes);
    }
    return w;
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    // In shared memory when worker threads will read it.
    const caches = allocCpuKvCache(spec, this.threads > 1);
    for (const c of caches) {
      if (this.threads > 1) {
        this.own(c.paged.k.data);
        this.own(c.paged.v.data);
      }
    }
    return caches;
  }

  /** Makes the worker threads forget every buffer this backend made (call once its model is unloaded). */
  release(): void {
    CpuThreads.running(this.threads)?.forget(this.shared);
    this.shared.clear();
  }

  private own<A extends SharedOperand>(a: A): A {
    this.shared.add(a);
    return a;
  }
}
