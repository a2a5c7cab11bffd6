import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { assemble, WASM_BUILDS } from '../../../bin/assemble-wasm.ts';
// Importing the kernels sets the flag under which Node 20 validates relaxed SIMD.
import '../../../src/backend/cpu/wasm/kernels.ts';

test('each committed .wasm binary is the assembly of its .wat source (npx tsx bin/assemble-wasm.ts)', async () => {
  for (const build of WASM_BUILDS) {
    const committed = new Uint8Array(readFileSync(build.wasm));
    assert.deepEqual(committed, await assemble(build), `${build.wasm}: rerun bin/assemble-wasm.ts`);
    assert.ok(WebAssembly.validate(committed), `${build.wasm}: this runtime rejects the binary`);
  }
});
