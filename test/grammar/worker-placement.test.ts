import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compileWorker,
  defaultGrammarWorkers,
  matcherWorker,
  SPREAD_MARGIN,
  type WorkerLoad,
} from '../../src/grammar/worker-placement.ts';

const worker = (open: number, compiling = 0): WorkerLoad => ({ open, compiling });

test('the default worker count leaves two cores, keeps at least two workers and at most eight', () => {
  assert.deepEqual(
    [1, 2, 4, 6, 10, 16, 128].map((cores) => defaultGrammarWorkers(cores)),
    [2, 2, 2, 4, 8, 8, 8],
  );
});

test('a new spec compiles on an idle worker, else on a new one while the pool has room', () => {
  assert.equal(compileWorker([], 2), 'new');
  const [busy, idle] = [worker(0, 1), worker(0)];
  assert.equal(compileWorker([busy, idle], 2), idle);
  const [loaded, compiling] = [worker(3), worker(0, 1)];
  assert.equal(compileWorker([loaded, compiling], 3), 'new', 'every worker has matchers or a compile');
  assert.equal(compileWorker([loaded, compiling], 2), loaded, 'a full pool: the idle one, matchers or not');
  const [a, b] = [worker(1, 2), worker(5, 1)];
  assert.equal(compileWorker([a, b], 2), b, 'all compiling: the fewest compiles in flight');
});

test("a popular grammar's matchers spread over the pool, no worker more than the margin above another", () => {
  for (const max of [1, 2, 3, 8]) {
    const workers: WorkerLoad[] = [worker(0)];
    const holders = [workers[0]!];
    for (let i = 0; i < 64; i++) {
      let w = matcherWorker(workers, holders, max);
      if (w === 'new') {
        w = worker(0);
        workers.push(w);
      }
      if (!holders.includes(w)) holders.push(w);
      w.open++;
    }
    const loads = workers.map((w) => w.open);
    assert.equal(workers.length, max, `max ${max}: ${loads}`);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= SPREAD_MARGIN, `max ${max}: ${loads}`);
  }
});

test('a matcher stays with its grammar until the imbalance reaches the margin; a compiling worker is no spare', () => {
  const holder = worker(SPREAD_MARGIN - 1);
  const spare = worker(0);
  assert.equal(matcherWorker([holder, spare], [holder], 2), holder);
  holder.open = SPREAD_MARGIN;
  assert.equal(matcherWorker([holder, spare], [holder], 2), spare);
  spare.compiling = 1;
  assert.equal(matcherWorker([holder, spare], [holder], 2), holder, 'a full pool with no idle spare');
  assert.equal(matcherWorker([holder, spare], [holder], 3), 'new');
  assert.throws(() => matcherWorker([holder], [], 2), /compiled nowhere/);
});
