import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusLine } from '../../src/cli/progress.ts';

/** A stream that records what is written, a terminal of `columns` columns when `tty`. */
function stream(tty: boolean, columns: number) {
  const written: string[] = [];
  const s = { isTTY: tty, columns, write: (t: string) => written.push(t) > 0 } as unknown as NodeJS.WriteStream;
  return { s, written };
}

test('a status line is redrawn in place on a terminal, cut to its width, and cleared with null', () => {
  const { s, written } = stream(true, 20);
  const show = statusLine(s)!;
  show('weights 1.00 / 16.06 GB, 5.0 GB/s');
  show(null);
  assert.deepEqual(written, ['\rweights 1.00 / 16.0\x1b[K', '\r\x1b[K']);
});

test('no status line on a pipe or a terminal without a size', () => {
  assert.equal(statusLine(stream(false, 80).s), undefined);
  assert.equal(statusLine(stream(true, 0).s), undefined);
});
