import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeBucket,
  deviceBusyFraction,
  type ScheduledShape,
  type StepRecord,
  SUMMARY_HEADER,
  stepClass,
  stepShape,
  summaryRows,
} from '../../../src/cli/bench/step-profile.ts';

const chunk = (promptLen: number, start: number, numTokens: number, over: Partial<ScheduledShape> = {}) => ({
  seq: { promptLen },
  start,
  cached: start,
  numTokens,
  logits: start + numTokens >= promptLen ? ('last' as const) : ('none' as const),
  draft: null,
  ...over,
});

test('a step is decode where a sequence computes one token past its prompt, prefill otherwise', () => {
  // A decode, a mid-prompt chunk, a prompt's last chunk of one token, a recompute after preemption (prompt and
  // outputs), and a compressed sequence whose cache holds fewer entries than its position.
  const s = stepShape([
    chunk(10, 14, 1),
    chunk(100, 0, 40),
    chunk(30, 29, 1),
    chunk(20, 0, 25),
    chunk(50, 60, 1, { cached: 16 }),
  ]);
  assert.deepEqual(s, {
    prefillTokens: 40 + 1 + 25,
    decodeSeqs: 2,
    contextTokens: 15 + 40 + 30 + 25 + 17,
    sampledRows: 4,
  });
  assert.equal(stepClass(s), 'mixed');
  assert.equal(stepClass(stepShape([chunk(10, 14, 1), chunk(10, 12, 1)])), 'decode-only');
  assert.equal(stepClass(stepShape([chunk(30, 29, 1)])), 'prefill-only');
  // A speculative decode computes its token and its drafts: still one decode sequence.
  const spec = stepShape([chunk(10, 14, 4, { draft: { tokens: [1, 2, 3] }, logits: 'all' })]);
  assert.deepEqual(spec, { prefillTokens: 0, decodeSeqs: 1, contextTokens: 18, sampledRows: 1 });
});

test('decode batch sizes fall in their buckets, the last one open', () => {
  const cases: [number, string][] = [
    [0, '-'],
    [1, '1-8'],
    [8, '1-8'],
    [9, '9-32'],
    [32, '9-32'],
    [33, '33-64'],
    [65, '65-128'],
    [128, '65-128'],
    [129, '129-256'],
    [256, '129-256'],
    [257, '257+'],
  ];
  for (const [n, label] of cases) assert.equal(decodeBucket(n), label, `${n} sequences`);
});

const record = (over: Partial<StepRecord>): StepRecord => ({
  prefillTokens: 0,
  decodeSeqs: 0,
  contextTokens: 0,
  sampledRows: 0,
  graph: false,
  wallMs: 1,
  launchMs: 0.5,
  forwardMs: 1,
  sampleMs: 0,
  idleMs: 0,
  ...over,
});

test('the summary sums each class and decode bucket, with the device time and the decode steps read rate', () => {
  const records = [
    record({ prefillTokens: 2048, contextTokens: 2048, sampledRows: 2, wallMs: 40, forwardMs: 30, sampleMs: 0.5 }),
    // Two decode steps of 100 and 120 sequences (the same bucket), one of 4.
    ...[100, 120].map((n) =>
      record({ decodeSeqs: n, contextTokens: n * 500, sampledRows: n, graph: true, wallMs: 20, forwardMs: 16 }),
    ),
    record({ decodeSeqs: 4, contextTokens: 4000, sampledRows: 4, graph: true, wallMs: 10, forwardMs: 8, idleMs: 2 }),
    record({ decodeSeqs: 50, prefillTokens: 500, contextTokens: 9000, sampledRows: 51, wallMs: 10, forwardMs: 9 }),
  ];
  const bytes = { weightBytes: 16e9, kvBytesPerToken: 131072 };
  const rows = summaryRows(records, bytes);
  const col = (row: string[], name: string) => row[SUMMARY_HEADER.indexOf(name)]!;
  assert.deepEqual(
    rows.map((r) => [r[0], r[1], r[2]]),
    [
      ['prefill-only', '-', '1'],
      ['decode-only', '1-8', '1'],
      ['decode-only', '65-128', '2'],
      ['mixed', '33-64', '1'],
      ['all', '', '5'],
    ],
  );
  const [prefill, small, large, mixed, all] = rows as [string[], string[], string[], string[], string[]];
  assert.equal(col(large, 'graph replays'), '2');
  assert.equal(col(large, 'output tokens'), '220');
  assert.equal(col(large, 'context tokens/step'), '55000');
  assert.equal(col(large, 'share of wall'), '40.0%');
  assert.equal(col(large, 'device ms'), '32.0');
  assert.equal(col(large, 'device busy'), '80.0%');
  // Weights twice and 110,000 keys' K and V over 32 ms of forwards.
  assert.equal(col(large, 'forward GB/s'), ((2 * 16e9 + 110_000 * 131072) / 32 / 1e6).toFixed(0));
  assert.equal(col(small, 'idle ms/step'), '2.000');
  assert.equal(col(prefill, 'sample ms/step'), '0.500');
  assert.equal(col(prefill, 'prefill tokens'), '2048');
  assert.equal(col(prefill, 'forward GB/s'), '-', 'no read model for prefill');
  assert.equal(col(mixed, 'forward GB/s'), '-', 'no read model for mixed steps');
  assert.equal(col(all, 'output tokens'), String(2 + 220 + 4 + 51));
  assert.equal(col(all, 'wall ms'), '100.0');
  assert.equal(col(all, 'device ms'), '79.5');
  assert.equal(deviceBusyFraction(records, 100), 0.795);
});

test('without device times the summary keeps the host columns only', () => {
  const records = [record({ decodeSeqs: 3, sampledRows: 3, forwardMs: null, sampleMs: null, idleMs: null })];
  const [row] = summaryRows(records, { weightBytes: 1, kvBytesPerToken: 1 });
  for (const name of ['device ms', 'device ms/step', 'forward ms/step', 'idle ms/step', 'device busy', 'forward GB/s'])
    assert.equal(row![SUMMARY_HEADER.indexOf(name)], '-', name);
  assert.equal(row![SUMMARY_HEADER.indexOf('launch ms/step')], '0.500');
  assert.equal(deviceBusyFraction(records, 1), null);
});
