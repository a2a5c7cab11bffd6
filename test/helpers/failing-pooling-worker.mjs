// The pooling runner thread, made to die (an uncaught error) on the first step posted to it: its listener comes
// before the real thread's, which never sees the step.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
parentPort.on('message', (m) => {
  if (m.kind === 'run') throw new Error('simulated runner failure');
});
await import('../../src/runner/pooling-worker.ts');
