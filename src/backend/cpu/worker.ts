/** A CPU worker thread: waits for a job from CpuThreads, computes its share, reports. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type BufferMessage, CTRL, type SharedArray } from './job-layout.ts';
import { runJob } from './worker-jobs.ts';

const { ctrl: ctrlBuffer, port, part } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort; part: number };
const ctrl = new Int32Array(ctrlBuffer, 0, CTRL.length);
const buffers = new Map<number, SharedArray>();

// A worker idles in Atomics.wait and allocates nothing, so it would never collect the views of a released model's
// buffers it drops, and its isolate would keep their memory alive: it collects once it has dropped some. (The flag
// makes `gc` a global of contexts created while it is set; it is cleared again at once. Flags are process-wide and
// the workers start together: the lock keeps another worker from clearing it between this one's set and capture.)
while (Atomics.compareExchange(ctrl, CTRL.flagLock, 0, 1) !== 0) Atomics.wait(ctrl, CTRL.flagLock, 1);
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
setFlagsFromString('--no-expose-gc');
Atomics.store(ctrl, CTRL.flagLock, 0);
Atomics.notify(ctrl, CTRL.flagLock, 1);

/**
 * Applies the buffer messages queued before this job; true when views were dropped. A function of its own, so that
 * its locals (the last message's buffer) die with its frame: the job loop's frame is never left.
 */
function readMessages(): boolean {
  let dropped = false;
  for (let msg = receiveMessageOnPort(port); msg; msg = receiveMessageOnPort(port)) {
    const m = msg.message as BufferMessage;
    if (m.type === 'forget') {
      for (const id of m.ids) buffers.delete(id);
      dropped = true;
      continue;
    }
    if (m.type === 'memory') {
      buffers.set(m.id, m.memory);
      continue;
    }
    const { id, type, buffer, offset, length } = m;
    const view =
      type === 'f32'
        ? new Float32Array(buffer, offset, length)
        : type === 'f64'
          ? new Float64Array(buffer, offset, length)
          : type === 'i32'
            ? new Int32Array(buffer, offset, length)
            : new Uint8Array(buffer, offset, length);
    buffers.set(id, view);
  }
  return dropped;
}

let seen = 0;
Atomics.add(ctrl, CTRL.ready, 1);
for (;;) {
  Atomics.wait(ctrl, CTRL.seq, seen);
  seen = Atomics.load(ctrl, CTRL.seq);
  // Buffers announced before this job was posted are already queued on the port.
  if (readMessages()) collect();
  try {
    runJob(ctrl, part, buffers);
  } catch {
    ctrl[CTRL.error] = 1;
  }
  Atomics.add(ctrl, CTRL.done, 1);
  Atomics.notify(ctrl, CTRL.done);
}
