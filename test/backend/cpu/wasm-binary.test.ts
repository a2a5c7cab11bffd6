import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assemble, WAT_SOURCES } from '../../../bin/assemble-wasm.ts';

test('each committed .wasm binary is the assembly of the .wat source beside it (npx tsx bin/assemble-wasm.ts)', async () => {
  for (const wat of WAT_SOURCES) {
    const committed = new Uint8Array(readFileSync(wat.replace(/\.wat$/, '.wasm')));
    assert.deepEqual(committed, await assemble(wat), `${wat}: rerun bin/assemble-wasm.ts`);
    assert.ok(WebAssembly.validate(committed), `${wat}: this runtime rejects the binary (SIMD and threads needed)`);
  }
});
