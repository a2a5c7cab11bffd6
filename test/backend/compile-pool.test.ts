import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CompileJob, CompilePool, compileWorkerCount } from '../../src/backend/cuda/compile-pool.ts';

const fake = { module: new URL('../helpers/fake-kernel-compiler.ts', import.meta.url).href };

function job(dir: string, name: string, source = `// ${name}`): CompileJob {
  return {
    key: `${name}|-DPAGODA_DTYPE=2`,
    name,
    source,
    options: ['-DPAGODA_DTYPE=2', '--gpu-architecture=sm_90'],
    cachePath: join(dir, `${name}.cubin`),
    label: `${name}.cu (sm_90 -DPAGODA_DTYPE=2)`,
  };
}

const decode = (b: Uint8Array | null) =>
  JSON.parse(new TextDecoder().decode(b ?? undefined)) as {
    name: string;
    options: string[];
    threadId: number;
    start: number;
    end: number;
  };

test('modules compile in parallel worker threads, land in the cache, and come back to a synchronous take', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-pool-'));
  const pool = new CompilePool(fake, 4);
  const jobs = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((n) => job(dir, n));
  for (const j of jobs) pool.submit(j);
  assert.equal(pool.stats.workers, 4);
  const outs = jobs.map((j) => decode(pool.take(j.key)));
  pool.close();
  assert.deepEqual(
    outs.map((o) => o.name),
    jobs.map((j) => j.name),
  );
  assert.deepEqual(outs[0]!.options, jobs[0]!.options);
  assert.ok(new Set(outs.map((o) => o.threadId)).size >= 2, 'more than one worker compiled');
  const overlapping = outs.some((a, i) => outs.some((b, k) => k !== i && a.start < b.end && b.start < a.end));
  assert.ok(overlapping, 'two compiles ran at the same time');
  for (const j of jobs) assert.ok(existsSync(j.cachePath), `${j.name} is in the cache`);
  assert.equal(pool.stats.compiled, 8);
  assert.equal(pool.stats.cached, 0);
  assert.ok(pool.stats.compileMs >= 8 * 140, `${pool.stats.compileMs} ms of compiling`);
});

test('a cached module is read at once and never reaches a worker; a module is submitted once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-pool-'));
  const j = job(dir, 'cached');
  writeFileSync(j.cachePath, 'CUBIN');
  const pool = new CompilePool(fake, 4);
  pool.submit(j);
  pool.submit(j);
  assert.equal(pool.stats.workers, 0, 'no worker started');
  assert.equal(new TextDecoder().decode(pool.take(j.key) ?? undefined), 'CUBIN');
  assert.deepEqual([pool.stats.submitted, pool.stats.cached, pool.stats.compiled], [1, 1, 0]);
  assert.ok(pool.has(j.key));
  assert.ok(!pool.has('other'));
  assert.throws(() => pool.take('other'), /kernel module other was never submitted/);
  pool.close();
});

test('a failed compile is one line naming the kernel and its build, thrown where the module is taken', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-pool-'));
  const pool = new CompilePool(fake, 2);
  const bad = job(dir, 'bad', '#error nope');
  const good = job(dir, 'good');
  pool.submit(bad);
  pool.submit(good);
  assert.throws(
    () => pool.take(bad.key),
    (err: Error) => {
      assert.equal(
        err.message,
        'kernel bad.cu (sm_90 -DPAGODA_DTYPE=2) failed to compile: bad.cu(3): error: #error directive: nope',
      );
      return true;
    },
  );
  assert.ok(decode(pool.take(good.key)).name === 'good', 'the other module still compiled');
  assert.equal(pool.stats.failed, 1);
  assert.ok(!existsSync(bad.cachePath), 'nothing cached for a failure');
  assert.ok(readFileSync(good.cachePath).length > 0);
  pool.close();
});

test('a pool whose workers never come up gives the module back to the caller (null) instead of hanging', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-pool-'));
  const stuck = { module: new URL('../helpers/stuck-kernel-compiler.ts', import.meta.url).href };
  const pool = new CompilePool(stuck, 2, { startMs: 1500, takeMs: 60_000 });
  const j = job(dir, 'never');
  pool.submit(j);
  const t0 = performance.now();
  assert.equal(pool.take(j.key), null);
  const waited = performance.now() - t0;
  assert.ok(waited >= 1400 && waited < 10_000, `gave up after ${waited} ms`);
  assert.equal(pool.stats.workers, 1, 'one job, one worker');
  assert.ok(!pool.has(j.key), "the module is the caller's to compile now");
});

test('the pool takes every core but one, at most 8, and no more workers than jobs', () => {
  assert.equal(compileWorkerCount(30, 16), 8);
  assert.equal(compileWorkerCount(30, 4), 3);
  assert.equal(compileWorkerCount(2, 16), 2);
  assert.equal(compileWorkerCount(5, 1), 1);
});
