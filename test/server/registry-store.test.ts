import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/server/errors.ts';
import { type ModelEntry, ModelRegistry } from '../../src/server/models.ts';
import { FakeSource } from './fake-engine.ts';

const entry = (name: string, path = `/models/${name}`): ModelEntry => ({ name, path, ref: name });

test('the registry learns names made after start-up: add, remove (unloading an idle model) and discover', async () => {
  const source = new FakeSource();
  const asked: string[] = [];
  const registry = new ModelRegistry([entry('a:latest')], source, {
    maxLoaded: 2,
    keepAliveMs: -1,
    discover: (name) => {
      asked.push(name);
      return name === 'late' ? entry('late:latest') : null;
    },
  });
  // A name created by the CLI while the server runs is found on first use, then known.
  assert.equal(registry.resolve('late').name, 'late:latest');
  assert.equal(registry.resolve('late:latest').name, 'late:latest');
  assert.deepEqual(asked, ['late']);
  assert.throws(
    () => registry.resolve('nope'),
    (e: unknown) => e instanceof ApiError && e.status === 404,
  );

  registry.add(entry('made:latest'));
  assert.deepEqual(
    registry.entries().map((e) => e.name),
    ['a:latest', 'late:latest', 'made:latest'],
  );
  const lease = await registry.acquire(registry.resolve('made'));
  lease.release();
  assert.equal(registry.resident().length, 1);
  // Re-creating a name drops the loaded model so the next request sees the new layers.
  await registry.remove('made:latest');
  assert.equal(registry.resident().length, 0);
  assert.equal(source.engines.get('made:latest')!.shutdownCalls, 1);
  assert.throws(
    () => registry.resolve('made'),
    (e: unknown) => e instanceof ApiError && e.status === 404,
  );
  registry.add(entry('made:latest', '/models/other'));
  assert.equal(registry.resolve('made').path, '/models/other');
  await registry.shutdown();
});
