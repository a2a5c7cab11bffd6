// The pooling runner thread: loads a pooling model's weights and backend here (a CUDA backend's context is made
// current on this thread), then launches the steps posted to it in order and posts back each one's rows. In its own
// file: it runs on import.
import { parentPort, workerData } from 'node:worker_threads';
import { CudaDriver } from '../backend/cuda/driver.ts';
import type { PoolingRunner } from './pooling-runner.ts';
import { type LoadedPoolingWeights, loadPoolingWeights } from './pooling-setup.ts';
import { type FromRunner, now, type PoolingWorkerData, postedError, type ToRunner } from './pooling-thread.ts';

const port = parentPort!;
const { modelDir, options, progress } = workerData as PoolingWorkerData;
const post = (m: FromRunner, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function load(): LoadedPoolingWeights<PoolingRunner> | null {
  try {
    return loadPoolingWeights(modelDir, options, {
      log: (line) => post({ kind: 'log', line }),
      progress: progress ? (line) => post({ kind: 'progress', line }) : undefined,
    });
  } catch (e) {
    post({ kind: 'loadFailed', error: postedError(e) });
    return null;
  }
}

const weights = load();
if (weights) {
  /** When the latest launch ended: a step posted while the thread was still launching the last one waits for it. */
  let lastLaunchEnd = 0;
  port.on('message', (m: ToRunner) => {
    if (m.kind === 'release') {
      let error: ReturnType<typeof postedError> | undefined;
      try {
        weights.release();
        // This thread's CUDA driver (if it opened one) goes with it: its stream, its hold on the context.
        CudaDriver.close();
      } catch (e) {
        error = postedError(e);
      }
      return post({ kind: 'released', error });
    }
    const start = Math.max(m.postedAt, lastLaunchEnd);
    const rows = weights.runner.runBatch(m.batch);
    lastLaunchEnd = now();
    const launchMs = lastLaunchEnd - start;
    rows.then(
      (r) => {
        // The rows' own buffer is handed over; a view of a larger or shared one is copied first.
        const own = r.buffer instanceof ArrayBuffer && r.byteOffset === 0 && r.byteLength === r.buffer.byteLength;
        const out = own ? r : r.slice();
        post({ kind: 'rows', id: m.id, rows: out, launchMs }, [out.buffer as ArrayBuffer]);
      },
      (e: unknown) => post({ kind: 'stepFailed', id: m.id, error: postedError(e) }),
    );
  });
  post({ kind: 'ready', facts: weights.facts });
}
