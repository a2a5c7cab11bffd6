import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { owningDriver } from '../../src/backend/cuda/owning-driver.ts';

/** A driver that logs what reaches it: the calls the view must pass on, and no others. */
function fakeDriver() {
  const log: string[] = [];
  let next = 0x1000n;
  const drv = {
    name: 'the fake',
    alloc: (bytes: number) => {
      log.push(`alloc ${bytes}`);
      next += 0x100n;
      return next;
    },
    free: (p: bigint) => log.push(`free ${p.toString(16)}`),
    allocHost: (bytes: number) => ({ buffer: new ArrayBuffer(bytes), addr: 0n, handle: `h${bytes}` }),
    freeHost: (h: unknown) => log.push(`freeHost ${h}`),
    loadModule: () => `m${log.length}`,
    createEvent: () => `e${log.length}`,
    destroyEvent: (e: string) => log.push(`destroy ${e}`),
    sync: () => log.push('sync'),
    check: (rc: number, what: string) => log.push(`${what} ${rc}`),
    api: {
      cuModuleUnload: (m: string) => {
        log.push(`unload ${m}`);
        return 0;
      },
    },
    /** A method the view does not override: it must see the driver's fields through the view. */
    describe(this: { name: string }) {
      return this.name;
    },
  };
  return { drv, log };
}

test("a backend's view of the driver frees, at release, what it still holds and nothing twice; then refuses to allocate", () => {
  const { drv, log } = fakeDriver();
  const view = owningDriver(drv as unknown as CudaDriver);
  const [a, b] = [view.alloc(10), view.alloc(20)];
  view.allocHost(64);
  view.allocHost(32);
  view.freeHost('h32');
  const m = view.loadModule(new Uint8Array(1));
  const e1 = view.createEvent(0);
  log.push('-'); // the fake names events by the log's length
  const e2 = view.createEvent(0);
  view.destroyEvent(e1);
  view.free(a);
  assert.throws(() => view.free(a), /freed twice/, 'a double free while the backend lives is an error');
  assert.throws(() => view.freeHost('h32'), /freed twice/);
  assert.equal((view as unknown as typeof drv).describe(), 'the fake', 'other methods are the driver own');
  log.length = 0;
  view.releaseAll();
  assert.deepEqual(log, [
    'sync',
    `free ${b.toString(16)}`,
    'freeHost h64',
    `unload ${m}`,
    'cuModuleUnload 0',
    `destroy ${e2}`,
  ]);
  log.length = 0;
  view.free(b);
  view.free(a);
  view.freeHost('h64');
  view.destroyEvent(e2);
  view.releaseAll();
  assert.deepEqual(log, [], 'a late free or a second release reaches nothing (the address may be another backend)');
  assert.throws(() => view.alloc(1), /this CUDA backend was released/);
  assert.throws(() => view.allocHost(1), /released/);
  assert.throws(() => view.loadModule(new Uint8Array(1)), /released/);
  assert.throws(() => view.createEvent(0), /released/);
});

test('two views of one driver keep their own records', () => {
  const { drv, log } = fakeDriver();
  const [one, two] = [owningDriver(drv as unknown as CudaDriver), owningDriver(drv as unknown as CudaDriver)];
  const p = one.alloc(8);
  const q = two.alloc(8);
  assert.throws(() => one.free(q), /not allocated by this backend/);
  log.length = 0;
  one.releaseAll();
  assert.deepEqual(log, ['sync', `free ${p.toString(16)}`], "one's release frees its own memory only");
  log.length = 0;
  two.releaseAll();
  assert.deepEqual(log, ['sync', `free ${q.toString(16)}`]);
});
