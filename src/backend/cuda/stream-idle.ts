import { pollUntil } from '../../util/poll.ts';
import type { CudaDriver, Handle } from './driver.ts';

/** cuEventQuery's answer while the work before the event is still running. */
const CUDA_ERROR_NOT_READY = 600;

/**
 * Waits for the stream without blocking the thread: an event recorded after the work queued so far, asked about once
 * per turn of the event loop (cuStreamSynchronize would hold the event loop for the whole step). The event is reused:
 * recording it again only moves it later, so an earlier waiter then waits for a little more work, never less.
 */
export class StreamIdle {
  private event: Handle = null;

  constructor(private readonly drv: CudaDriver) {}

  wait(): Promise<void> {
    const { api, stream } = this.drv;
    if (this.event === null) {
      const e = [null];
      this.drv.check(api.cuEventCreate(e, 2), 'cuEventCreate'); // CU_EVENT_DISABLE_TIMING
      this.event = e[0];
    }
    const event = this.event;
    this.drv.check(api.cuEventRecord(event, stream), 'cuEventRecord');
    return pollUntil(() => {
      const rc = api.cuEventQuery(event);
      if (rc === CUDA_ERROR_NOT_READY) return false;
      this.drv.check(rc, 'cuEventQuery');
      return true;
    });
  }
}
