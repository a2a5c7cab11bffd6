import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepPacer } from '../../src/engine/step-pacer.ts';

test('step pacer: launch at once until a step has finished, or when nothing is in flight', () => {
  const p = new StepPacer(1);
  assert.equal(p.delay(0), 0);
  p.launched(100, 0, 1);
  assert.equal(p.delay(5), 0, 'no rate learnt yet');
  p.finished(11);
  assert.equal(p.delay(11), 0, 'nothing in flight');
});

test('step pacer: the next step is due the launch time and margin before the step in flight ends', () => {
  const p = new StepPacer(1);
  p.launched(100, 0, 1);
  p.finished(11); // 0.11 ms a token
  p.launched(200, 11, 2); // ends at 11 + 22 = 33
  assert.equal(p.delay(12), 33 - 2 - 1 - 12);
  assert.equal(p.delay(40), 0, 'past due: never negative');
});

test('step pacer: a step launched behind another begins at its end; the rate follows each finished step', () => {
  const p = new StepPacer(0);
  p.launched(100, 0, 0);
  p.finished(10); // 0.1 ms a token
  p.launched(100, 10, 0); // ends at 20
  p.launched(100, 12, 0); // behind it: ends at 30
  assert.equal(p.delay(12), 30 - 12);
  p.finished(30); // the first of them took 20 ms: 0.2 a token, averaged with 0.1 to 0.15
  assert.equal(p.delay(30), 30 + 15 - 30 - 0, "the second began at the first one's end, 30");
});
