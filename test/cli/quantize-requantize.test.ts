import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pagodaSync } from '../helpers/cli.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pagoda-requantize-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('quantize refuses an already quantized GGUF source unless --allow-requantize, as llama.cpp does', () => {
  const q8 = join(dir, 'q8.gguf');
  const first = pagodaSync(['quantize', join(projectRoot, 'test/fixtures/models/tiny-llama'), q8, '--type', 'q8_0']);
  assert.equal(first.status, 0, first.stderr);
  const again = join(dir, 'q4.gguf');
  const refused = pagodaSync(['quantize', q8, again, '--type', 'q4_0']);
  assert.equal(refused.status, 1);
  assert.match(
    refused.stderr,
    /^error: \S+q8\.gguf is quantized already \(\S+ is Q8_0\): pass --allow-requantize to quantize it again\n$/,
  );
  const allowed = pagodaSync(['quantize', q8, again, '--type', 'q4_0', '--allow-requantize']);
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.match(allowed.stdout, /^wrote \S+q4\.gguf: Q4_0, \d+ tensors \(.*\d+ Q4_0\)\n$/);
  // A 16/32-bit GGUF is no requantization.
  const f32 = join(dir, 'f32.gguf');
  assert.equal(pagodaSync(['convert', join(projectRoot, 'test/fixtures/models/tiny-llama'), f32]).status, 0);
  const fromFloat = pagodaSync(['quantize', f32, join(dir, 'q4-from-f32.gguf'), '--type', 'q4_0']);
  assert.equal(fromFloat.status, 0, fromFloat.stderr);
});
