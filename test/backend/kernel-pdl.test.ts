import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelsDir } from '../../src/backend/cuda/modules.ts';

/** Every `extern "C" __global__` kernel of a source (line comments removed), with its body. */
export function kernelBodies(source: string): { name: string; body: string }[] {
  const text = source.replace(/\/\/[^\n]*/g, '');
  const out: { name: string; body: string }[] = [];
  for (const m of text.matchAll(/extern\s+"C"\s+__global__/g)) {
    const open = text.indexOf('{', m.index);
    const head = text.slice(m.index, open);
    const name = head.replace(/__launch_bounds__\s*\([^)]*\)/, '').match(/([\w#]+)\s*\(/)?.[1] ?? '?';
    let depth = 0;
    let end = open;
    for (; end < text.length; end++) {
      if (text[end] === '{') depth++;
      else if (text[end] === '}' && --depth === 0) break;
    }
    out.push({ name, body: text.slice(open + 1, end) });
  }
  return out;
}

// Kernels are launched with programmatic dependent launch: one that touches an earlier kernel's output (or writes,
// or returns) before PDL_WAIT races with it. A new kernel without the wait fails here, not on a GPU by chance.
test('every kernel waits on its predecessor (PDL_WAIT / PDL_ENTER) before any return', () => {
  const files = readdirSync(kernelsDir).filter((f) => f.endsWith('.cu'));
  let count = 0;
  for (const f of files) {
    for (const { name, body } of kernelBodies(readFileSync(join(kernelsDir, f), 'utf8'))) {
      count++;
      const wait = body.search(/\bPDL_(WAIT|ENTER)\(\)/);
      assert.ok(wait >= 0, `${f}: kernel ${name} has no PDL_WAIT() / PDL_ENTER()`);
      assert.ok(!/\breturn\b/.test(body.slice(0, wait)), `${f}: kernel ${name} may return before PDL_WAIT()`);
    }
  }
  assert.ok(count >= 15, `found ${count} kernels`);
});

test('the kernel scan sees macro-defined kernels and flags a missing wait', () => {
  const src = `#define K(D) \\\n extern "C" __global__ void k##D(int* p) { \\\n PDL_ENTER(); p[0] = D; }\nK(1)\n
extern "C" __global__ void bad(int* p) { if (!p) return; // { unbalanced in a comment
  PDL_WAIT(); p[0] = 1; }
extern "C" __global__ void none(int* p) { p[0] = 1; }`;
  const bodies = kernelBodies(src);
  assert.deepEqual(
    bodies.map((b) => b.name),
    ['k##D', 'bad', 'none'],
  );
  assert.match(bodies[0]!.body, /PDL_ENTER/);
  assert.match(bodies[1]!.body.slice(0, bodies[1]!.body.indexOf('PDL_WAIT')), /return/);
  assert.doesNotMatch(bodies[2]!.body, /PDL_/);
});
