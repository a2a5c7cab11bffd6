import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { pollUntil } from '../../src/util/poll.ts';

test('pollUntil asks on turns of the event loop, so timers and immediates run while it waits', async () => {
  let ready = false;
  let asks = 0;
  const ran: string[] = [];
  setImmediate(() => ran.push('immediate'));
  setTimeout(() => {
    ran.push('timer');
    ready = true;
  }, 5);
  await pollUntil(() => {
    asks++;
    return ready;
  });
  assert.deepEqual(ran, ['immediate', 'timer']);
  assert.ok(asks > 1, `asked ${asks} times`);
});

test('pollUntil notices a short wait within its eager asks, one per turn', async () => {
  let turns = 0;
  let asks = 0;
  const count = () => {
    turns++;
    if (turns < 100) setImmediate(count);
  };
  setImmediate(count);
  await pollUntil(() => ++asks === 5, { eagerAsks: 8 });
  // Five asks on consecutive turns: no timer (>= 1 ms) came between them.
  assert.equal(asks, 5);
  assert.ok(turns >= 4 && turns <= 6, `${turns} turns for 5 asks`);
});

/** CPU milliseconds of this process's main thread (Linux: utime + stime of its task, 10 ms ticks). */
const mainThreadCpuMs = () => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

test('a long wait backs off to timers: few asks and an idle thread, instead of a core spinning the event loop', async () => {
  const waitMs = 100;
  const canReadCpu = existsSync(`/proc/self/task/${process.pid}/stat`);
  const cpu0 = canReadCpu ? mainThreadCpuMs() : 0;
  const start = performance.now();
  let asks = 0;
  await pollUntil(
    () => {
      asks++;
      return performance.now() - start >= waitMs;
    },
    { eagerAsks: 8, intervalMs: 2 },
  );
  // Eight eager asks, then one per 2 ms timer: about 8 + 50. Spinning on immediates asks tens of thousands of times.
  assert.ok(asks <= 8 + waitMs / 2 + 2, `asked ${asks} times in ${waitMs} ms`);
  assert.ok(asks > 8, `asked ${asks} times`);
  if (canReadCpu) {
    const cpuMs = mainThreadCpuMs() - cpu0;
    assert.ok(cpuMs <= waitMs / 2, `the main thread used ${cpuMs} ms of CPU over a ${waitMs} ms wait`);
  }
});

test('pollUntil resolves at once when already done, and rejects with what done() throws', async () => {
  let asks = 0;
  await pollUntil(() => ++asks > 0);
  assert.equal(asks, 1);
  await assert.rejects(
    pollUntil(() => {
      throw new Error('device lost');
    }),
    /device lost/,
  );
  let late = 0;
  await assert.rejects(
    pollUntil(
      () => {
        if (++late === 12) throw new Error('device lost late');
        return false;
      },
      { eagerAsks: 4 },
    ),
    /device lost late/,
  );
});
