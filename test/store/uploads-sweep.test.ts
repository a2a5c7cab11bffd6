import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sweepUploads } from '../../src/store/uploads.ts';

const blob = (c: string) => `sha256-${c.repeat(64)}`;

test('the start-up sweep removes crash-left partial uploads after an hour and unused uploads after a day', () => {
  const root = mkdtempSync(join(tmpdir(), 'pagoda-uploads-'));
  try {
    const dir = join(root, 'uploads');
    mkdirSync(dir);
    const now = Date.now();
    const file = (name: string, ageMs: number) => {
      writeFileSync(join(dir, name), 'x');
      const t = new Date(now - ageMs);
      utimesSync(join(dir, name), t, t);
    };
    const HOUR = 3600_000;
    file(`${blob('a')}.upload-1`, 2 * HOUR); // cut off by a stop
    file(`${blob('b')}.upload-2`, 60_000); // still being written
    file(blob('c'), 25 * HOUR); // never named by a create
    file(blob('d'), 2 * HOUR); // waiting for its create
    file('notes.txt', 100 * HOUR); // not the store's
    assert.deepEqual(sweepUploads(root, now).sort(), [`${blob('a')}.upload-1`, blob('c')]);
    assert.deepEqual(readdirSync(dir).sort(), ['notes.txt', `${blob('b')}.upload-2`, blob('d')]);
    assert.deepEqual(sweepUploads(join(root, 'missing'), now), [], 'a store without uploads/ has nothing to sweep');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
