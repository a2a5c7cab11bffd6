import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pagodaSync } from '../helpers/cli.ts';

test('-v (as ollama -v), -V and --version print the version', () => {
  const outputs = ['-v', '-V', '--version'].map((flag) => pagodaSync([flag]));
  for (const r of outputs) {
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  }
  assert.equal(new Set(outputs.map((r) => r.stdout)).size, 1, 'one format');
});
