/** A CPU worker thread: waits for a linear() job from CpuThreads, computes its share of output columns, reports. */
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { linearRows } from './matmul.ts';
import { type BufferMessage, CTRL, OUT_ID, partRange, X_ID } from './threads.ts';

const { ctrl: ctrlBuffer, port, part } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort; part: number };
const ctrl = new Int32Array(ctrlBuffer);
const buffers = new Map<number, Float32Array>();

let seen = 0;
for (;;) {
  Atomics.wait(ctrl, CTRL.seq, seen);
  seen = Atomics.load(ctrl, CTRL.seq);
  // Buffers announced before this job was posted are already queued on the port.
  for (let msg = receiveMessageOnPort(port); msg; msg = receiveMessageOnPort(port)) {
    const { id, buffer, offset, length } = msg.message as BufferMessage;
    buffers.set(id, new Float32Array(buffer, offset, length));
  }
  try {
    const [T, n, m] = [ctrl[CTRL.T]!, ctrl[CTRL.n]!, ctrl[CTRL.m]!];
    const [start, end] = partRange(m, ctrl[CTRL.parts]!, part);
    const w = buffers.get(ctrl[CTRL.weight]!);
    if (!w) throw new Error(`weight ${ctrl[CTRL.weight]} was never announced`);
    linearRows(buffers.get(X_ID)!, w, buffers.get(OUT_ID)!, T, n, m, start, end);
  } catch {
    ctrl[CTRL.error] = 1;
  }
  Atomics.add(ctrl, CTRL.done, 1);
  Atomics.notify(ctrl, CTRL.done);
}
