import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { captureGraph } from '../../src/backend/cuda/graph-capture.ts';

/** A driver whose capture calls log what they do; cuStreamEndCapture answers `endRc`. */
function fakeDriver(endRc: number) {
  const log: string[] = [];
  const drv = {
    stream: 'main',
    check: (rc: number, what: string) => {
      if (rc !== 0) throw new Error(`${what} failed: ${rc}`);
    },
    api: {
      cuStreamBeginCapture: () => {
        log.push('begin');
        return 0;
      },
      cuStreamEndCapture: (_s: string, g: unknown[]) => {
        log.push('end');
        g[0] = 'graph';
        return endRc;
      },
      cuGraphInstantiate: (exec: unknown[]) => {
        log.push('instantiate');
        exec[0] = 'exec';
        return 0;
      },
      cuGraphDestroy: (g: string) => {
        log.push(`destroy ${g}`);
        return 0;
      },
    },
  };
  return { drv: drv as unknown as CudaDriver, log };
}

test("captureGraph: the body's work becomes an executable graph; a failing body's error is the one reported", () => {
  const ok = fakeDriver(0);
  assert.equal(
    captureGraph(ok.drv, () => ok.log.push('body')),
    'exec',
  );
  assert.deepEqual(ok.log, ['begin', 'body', 'end', 'instantiate', 'destroy graph']);
  // A body that throws (the capture's end then fails too): its own error comes out.
  const failing = fakeDriver(904);
  assert.throws(
    () =>
      captureGraph(failing.drv, () => {
        throw new Error('the real cause');
      }),
    /the real cause/,
  );
  assert.deepEqual(failing.log, ['begin', 'end', 'destroy graph']);
  // A body that returns but leaves the capture invalid: the capture's own error.
  const invalid = fakeDriver(904);
  assert.throws(() => captureGraph(invalid.drv, () => {}), /cuStreamEndCapture failed: 904/);
});
