/** A CPU worker thread: waits for a job from CpuThreads, computes its share, reports. */
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type BufferMessage, CTRL, type SharedArray } from './job-layout.ts';
import { runJob } from './worker-jobs.ts';

const { ctrl: ctrlBuffer, port, part } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort; part: number };
const ctrl = new Int32Array(ctrlBuffer, 0, CTRL.length);
const buffers = new Map<number, SharedArray>();

let seen = 0;
Atomics.add(ctrl, CTRL.ready, 1);
for (;;) {
  Atomics.wait(ctrl, CTRL.seq, seen);
  seen = Atomics.load(ctrl, CTRL.seq);
  // Buffers announced before this job was posted are already queued on the port.
  for (let msg = receiveMessageOnPort(port); msg; msg = receiveMessageOnPort(port)) {
    const m = msg.message as BufferMessage;
    if (m.type === 'forget') {
      for (const id of m.ids) buffers.delete(id);
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
  try {
    runJob(ctrl, part, buffers);
  } catch {
    ctrl[CTRL.error] = 1;
  }
  Atomics.add(ctrl, CTRL.done, 1);
  Atomics.notify(ctrl, CTRL.done);
}
