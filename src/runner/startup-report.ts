import type { CompilePoolStats } from '../backend/cuda/compile-pool.ts';
import type { UploadStats } from '../backend/cuda/weight-upload.ts';

/** What a CUDA start-up took, for the start-up line `pagoda run` and `serve` print once the engine is ready. */
export interface CudaStartupTimes {
  weights: { upload: UploadStats; ms: number };
  /** The compile pool's stats (null: no kernel was prefetched). */
  prefetch: CompilePoolStats | null;
  /** Milliseconds of the pool's compiling wall time that ran while weights loaded. */
  hiddenMs: number;
  /** Modules built on the main thread when first used (the plan missed them), and those read from the cache. */
  firstUse: { compiled: number; cached: number; compileMs: number };
  /** The profiling pass that sizes the KV cache, with the KV allocation; null when there was none. */
  kvMs: number | null;
  graphs: boolean;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The CUDA part of the start-up line: `weights 16.06 GB in 2.9 s (5.5 GB/s; 2.5 s reading, 0.2 s waiting on
 * copies); kernels: ...; KV sizing (profiling pass) 0.4 s; CUDA graphs captured per batch size on first decode`.
 */
export function cudaStartupParts(t: CudaStartupTimes): string {
  const { upload } = t.weights;
  const gb = upload.bytes / 1e9;
  const rate = t.weights.ms > 0 ? ` (${(gb / (t.weights.ms / 1000)).toFixed(1)} GB/s` : ' (';
  const weights = `weights ${gb.toFixed(2)} GB in ${s(t.weights.ms)}${rate}; ${s(upload.readMs)} reading, ${s(upload.waitMs)} waiting on copies)`;
  const parts = [weights, kernelsPart(t)];
  if (t.kvMs !== null) parts.push(`KV sizing (profiling pass) ${s(t.kvMs)}`);
  parts.push(t.graphs ? 'CUDA graphs captured per batch size on first decode' : 'CUDA graphs off');
  return parts.join('; ');
}

function kernelsPart(t: CudaStartupTimes): string {
  const p = t.prefetch;
  const out: string[] = [];
  if (p && p.submitted > 0) {
    const compiled = p.compiled + p.failed;
    const built =
      compiled > 0
        ? `${compiled} compiled on ${p.workers} thread${p.workers === 1 ? '' : 's'} (${s(p.compileMs)} of compiling, ${s(t.hiddenMs)} of ${s(p.wallMs)} behind loading, ${s(p.waitMs)} waited for)`
        : '';
    const still = p.submitted - p.cached - compiled;
    out.push(
      `kernels: ${p.submitted} prefetched, ${[built, `${p.cached} cached`, still ? `${still} still compiling` : '']
        .filter(Boolean)
        .join(', ')}`,
    );
    if (p.failed) out.push(`${p.failed} failed (reported where used)`);
  } else {
    out.push('kernels: none prefetched');
  }
  const f = t.firstUse;
  out.push(
    f.compiled ? `${f.compiled} compiled on first use (${s(f.compileMs)})` : 'none compiled on first use so far',
  );
  if (f.cached) out.push(`${f.cached} read from the cache on first use`);
  return out.join(', ');
}
