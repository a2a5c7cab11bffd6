/**
 * Assembles the CPU backend's WebAssembly text into the binary the backend loads (wabt's wat2wasm, a dev
 * dependency: nothing assembles at run time). Run after editing a .wat file: `npx tsx bin/assemble-wasm.ts`; a test
 * checks that the committed binary is this assembly of its source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import wabt from 'wabt';

/** The .wat sources, each assembled to the .wasm beside it. */
export const WAT_SOURCES = [fileURLToPath(new URL('../src/backend/cpu/wasm/quant-dot.wat', import.meta.url))];

/** The binary for one .wat file: SIMD and shared memory, no names section (the binary depends on the source only). */
export async function assemble(watPath: string): Promise<Uint8Array> {
  const module = (await wabt()).parseWat(watPath, readFileSync(watPath, 'utf8'), { simd: true, threads: true });
  try {
    // wabt's validate() ignores the threads feature; the backend's WebAssembly.Module validates the binary.
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const wat of WAT_SOURCES) {
    const out = wat.replace(/\.wat$/, '.wasm');
    writeFileSync(out, await assemble(wat));
    console.log(`wrote ${out}`);
  }
}
