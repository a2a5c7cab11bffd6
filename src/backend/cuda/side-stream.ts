import type { CudaDriver, Handle } from './driver.ts';
import { CU_EVENT_DISABLE_TIMING } from './stream-event.ts';

/** Which of the two streams a step goes on: the driver's, or the side stream beside it. */
export type StreamName = 'main' | 'side';

/**
 * A second stream beside the driver's, for work that may run while the stream's runs, and the event operations that
 * order work across the two. Whatever goes on the side stream must be joined back (the stream waiting for its last
 * record) before anything on the stream may depend on it, and before a graph capture ends.
 */
export class SideStream {
  readonly stream: Handle;

  /** `drv`: a backend's view of the driver, which destroys the stream and the events with the backend. */
  constructor(private readonly drv: CudaDriver) {
    this.stream = drv.createStream();
  }

  /** An event to order the two streams with (no timing). */
  event(): Handle {
    return this.drv.createEvent(CU_EVENT_DISABLE_TIMING);
  }

  handle(on: StreamName): Handle {
    return on === 'side' ? this.stream : this.drv.stream;
  }

  /** Records `e` on `on`: the work queued there so far. */
  record(e: Handle, on: StreamName): void {
    this.drv.check(this.drv.api.cuEventRecord(e, this.handle(on)), 'cuEventRecord');
  }

  /** Work queued on `on` from now on waits for `e`'s last record (inside a graph capture too). */
  wait(on: StreamName, e: Handle): void {
    this.drv.check(this.drv.api.cuStreamWaitEvent(this.handle(on), e, 0), 'cuStreamWaitEvent');
  }

  /** Blocks until the side stream's work is done (before memory it may still use is freed). */
  sync(): void {
    this.drv.check(this.drv.api.cuStreamSynchronize(this.stream), 'cuStreamSynchronize');
  }
}
