import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pollUntil } from '../../src/util/poll.ts';

test('pollUntil asks once per turn of the event loop, so timers and immediates run while it waits', async () => {
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
});
