import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/server/errors.ts';
import { type ModelEntry, ModelRegistry } from '../../src/server/models.ts';
import { FakeSource } from './fake-engine.ts';
import { eventually } from './harness.ts';

const entry = (name: string): ModelEntry => ({ name, path: `/models/${name}`, ref: name });

test('names resolve to known entries only (aliases: path, :latest); anything else is a 404', () => {
  const registry = new ModelRegistry([entry('a'), entry('b:latest')], new FakeSource(), {
    maxLoaded: 1,
    keepAliveMs: 1000,
  });
  assert.equal(registry.resolve('a').name, 'a');
  assert.equal(registry.resolve('a:latest').name, 'a');
  assert.equal(registry.resolve('/models/a').name, 'a');
  assert.equal(registry.resolve('b').name, 'b:latest');
  for (const bad of ['../a', '/etc/passwd', 'A', 'a/../a']) {
    assert.throws(
      () => registry.resolve(bad),
      (e: unknown) => e instanceof ApiError && e.status === 404,
    );
  }
  assert.throws(
    () => registry.resolve(''),
    (e: unknown) => e instanceof ApiError && e.status === 400,
  );
});

test('keep-alive unloads an idle model; a busy one stays; max loaded evicts the least recently used', async () => {
  const source = new FakeSource();
  const registry = new ModelRegistry([entry('a'), entry('b')], source, { maxLoaded: 1, keepAliveMs: -1 });
  const a = await registry.acquire(entry('a'), 20);
  assert.equal(a.resident.expiresAt, null);
  a.release();
  assert.notEqual(a.resident.expiresAt, null);
  await eventually(() => registry.resident().length === 0, 2000, 'unload after keep-alive');
  assert.equal(source.engines.get('a')!.shutdownCalls, 1);

  const a2 = await registry.acquire(entry('a'));
  a2.release(); // forever
  const b = await registry.acquire(entry('b'));
  assert.deepEqual(
    registry.resident().map((r) => r.entry.name),
    ['b'],
  );
  assert.equal(source.engines.get('a')!.shutdownCalls, 1, 'the new engine of a was shut down when b came in');
  b.release();
  await registry.shutdown();
  assert.equal(registry.resident().length, 0);
});

test('a model that fails to load is a 500 naming it, and the next request tries again', async () => {
  const source = new FakeSource();
  let fail = true;
  const load = source.load.bind(source);
  source.load = async (e) => {
    if (fail) throw new Error('weights are corrupt');
    return load(e);
  };
  const registry = new ModelRegistry([entry('a')], source, { maxLoaded: 1, keepAliveMs: -1 });
  await assert.rejects(
    registry.acquire(entry('a')),
    (e: unknown) =>
      e instanceof ApiError && e.status === 500 && /"a" failed to load: weights are corrupt/.test(e.message),
  );
  fail = false;
  const lease = await registry.acquire(entry('a'));
  lease.release();
  await registry.shutdown();
});

test('a model whose unloading fails when its keep-alive runs out is logged, and the server goes on', async () => {
  const source = new FakeSource();
  const lines: string[] = [];
  const registry = new ModelRegistry([entry('a')], source, {
    maxLoaded: 1,
    keepAliveMs: -1,
    log: (l) => lines.push(l),
  });
  const a = await registry.acquire(entry('a'), 10);
  source.engines.get('a')!.shutdown = async () => {
    throw new Error('the device is gone');
  };
  a.release();
  await eventually(() => lines.length > 0, 2000, 'the failure logged');
  assert.deepEqual(lines, ['unloading a: the device is gone']);
  assert.equal(registry.resident().length, 0, 'forgotten all the same');
  const again = await registry.acquire(entry('a'));
  assert.equal(source.loads, 2, 'the next request loads it afresh');
  again.release();
  // Removed (an adapter replaced or unloaded): the name goes, and a failed unload is logged, not thrown.
  source.engines.get('a')!.shutdown = async () => {
    throw new Error('still gone');
  };
  await registry.remove('a');
  assert.deepEqual(lines, ['unloading a: the device is gone', 'unloading a: still gone']);
  assert.equal(registry.nameInUse('a'), null);
  await registry.shutdown();
});

test('a removed model goes once nothing uses it: after its last request, or when its load ends, keep-alive or not', async () => {
  const source = new FakeSource();
  const registry = new ModelRegistry([entry('busy'), entry('loading'), entry('idle')], source, {
    maxLoaded: 8,
    keepAliveMs: -1,
  });
  const busy = await registry.acquire(entry('busy'));
  const idle = await registry.acquire(entry('idle'));
  idle.release();
  await registry.remove('idle');
  assert.equal(source.engines.get('idle')!.shutdownCalls, 1, 'an idle model goes at once');
  await registry.remove('busy');
  assert.equal(registry.nameInUse('busy'), null, 'the name is free at once');
  await assert.rejects(registry.acquire(entry('busy')), (e: unknown) => e instanceof ApiError && e.status === 404);
  assert.equal(source.engines.get('busy')!.shutdownCalls, 0, 'not while a request uses it');
  busy.release();
  await eventually(() => source.engines.get('busy')!.shutdownCalls === 1, 2000, 'unload after the last request');

  // Removed while loading: a request that waited gets the model, which goes when it is done; with none, at once.
  let finish: () => void = () => {};
  const load = source.load.bind(source);
  source.load = async (e) => {
    await new Promise<void>((r) => {
      finish = r;
    });
    return load(e);
  };
  const waiting = registry.acquire(entry('loading'));
  const removed = registry.remove('loading');
  finish();
  const lease = await waiting;
  await removed;
  assert.equal(source.engines.get('loading')!.shutdownCalls, 0, 'the waiting request has it');
  lease.release();
  await eventually(() => source.engines.get('loading')!.shutdownCalls === 1, 2000, 'unload after its request');
  await registry.shutdown();
});
