// The tokenizer worker, held on a latch: each text it receives waits until the test opens the latch. The latch is an
// Int32Array over workerData.latch (a SharedArrayBuffer): [0] opened, [1] texts received. While a text is held,
// whatever the server still answers was not waiting on tokenization.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

const latch = new Int32Array(workerData.latch);
// The real worker's message handler runs behind the latch, which blocks this thread only.
const on = parentPort.on.bind(parentPort);
parentPort.on = (event, handler) =>
  on(event, (message) => {
    if (event === 'message') {
      Atomics.add(latch, 1, 1);
      Atomics.wait(latch, 0, 0);
    }
    handler(message);
  });
register();
await import('../../src/loader/tokenizer-worker.ts');
