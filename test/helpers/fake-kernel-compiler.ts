// A stand-in for NVRTC in the compile pool's workers: each compile sleeps, then returns bytes naming the source, the
// options and the thread; a source containing `#error` fails with a log shaped like NVRTC's.
import { threadId } from 'node:worker_threads';
import type { KernelCompiler } from '../../src/backend/cuda/nvrtc.ts';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function createCompiler(): KernelCompiler {
  return {
    version: 'fake 1',
    compile(name, source, options) {
      const start = performance.timeOrigin + performance.now();
      Atomics.wait(sleeper, 0, 0, 150);
      if (source.includes('#error')) {
        throw new Error(
          `NVRTC could not compile ${name} (${options.join(' ')}):\n${name}.cu(3): error: #error directive: nope\n\n1 error detected`,
        );
      }
      const end = performance.timeOrigin + performance.now();
      return new TextEncoder().encode(JSON.stringify({ name, source, options, threadId, start, end }));
    },
  };
}
