import { pollUntil } from '../../util/poll.ts';
import type { CudaDriver, Handle } from './driver.ts';

/**
 * A point on the stream: `record` marks the work queued so far; then one asks whether the device got there. A host
 * buffer that a queued copy reads or writes is safe to touch once the event recorded after that copy is done.
 */
export interface StreamEvent {
  record(): void;
  /** True once the stream has passed the last `record` (or nothing was recorded). */
  done(): boolean;
  /** Resolves once done, the event loop free meanwhile (polled: cuStreamSynchronize would hold it for a whole step). */
  wait(): Promise<void>;
  /** Blocks the thread until done: for a buffer about to be rewritten whose copy is normally long finished. */
  sync(): void;
}

/** cuEventQuery's answer while the work before the event is still running. */
const CUDA_ERROR_NOT_READY = 600;
/** cuEventCreate's flag for events only ever waited on (no timing: cheaper to record). */
const CU_EVENT_DISABLE_TIMING = 2;

/** A CUDA event on the driver's one stream. */
export class CudaEvent implements StreamEvent {
  private readonly event: Handle;

  /** `drv`: a backend's view of the driver, which destroys the event when the backend is released. */
  constructor(private readonly drv: CudaDriver) {
    this.event = drv.createEvent(CU_EVENT_DISABLE_TIMING);
  }

  record(): void {
    this.drv.check(this.drv.api.cuEventRecord(this.event, this.drv.stream), 'cuEventRecord');
  }

  done(): boolean {
    const rc = this.drv.api.cuEventQuery(this.event);
    if (rc === CUDA_ERROR_NOT_READY) return false;
    this.drv.check(rc, 'cuEventQuery');
    return true;
  }

  wait(): Promise<void> {
    return pollUntil(() => this.done());
  }

  sync(): void {
    this.drv.check(this.drv.api.cuEventSynchronize(this.event), 'cuEventSynchronize');
  }
}

/** Milliseconds the driver's stream spends on `body`, measured with events (benchmarks). */
export function streamMillis(drv: CudaDriver, body: () => void): number {
  const a = drv.createEvent(0);
  let b: Handle | null = null;
  try {
    b = drv.createEvent(0);
    drv.check(drv.api.cuEventRecord(a, drv.stream), 'cuEventRecord');
    body();
    drv.check(drv.api.cuEventRecord(b, drv.stream), 'cuEventRecord');
    drv.check(drv.api.cuEventSynchronize(b), 'cuEventSynchronize');
    const ms = [0];
    drv.check(drv.api.cuEventElapsedTime(ms, a, b), 'cuEventElapsedTime');
    return ms[0]!;
  } finally {
    drv.destroyEvent(a);
    if (b !== null) drv.destroyEvent(b);
  }
}

/**
 * Microseconds per launch of `body(i)` over `n` rotated operands (weights larger together than the L2): one warm-up
 * round, then the best of two passes of 4 rounds (benchmarks).
 */
export function rotatedLaunchMicros(drv: CudaDriver, n: number, body: (i: number) => void): number {
  const reps = 4 * n;
  for (let i = 0; i < n; i++) body(i);
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < 2; pass++) {
    const ms = streamMillis(drv, () => {
      for (let i = 0; i < reps; i++) body(i % n);
    });
    best = Math.min(best, (ms * 1000) / reps);
  }
  return best;
}
