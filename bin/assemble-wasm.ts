/**
 * Assembles the CPU backend's WebAssembly text into the binaries the backend loads (wabt's wat2wasm, a dev
 * dependency: nothing assembles at run time), with the small helper functions inlined first (wat-inline.ts: V8 does
 * not inline wasm calls by default). Run after editing a .wat file: `npx tsx bin/assemble-wasm.ts`; a test checks
 * that each committed binary is this assembly of its source.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import wabt from 'wabt';
import { inlineHelpers } from './wat-inline.ts';

/** One binary: its .wat source, the helpers it replaces (by name, as WebAssembly text) and the features it uses. */
export interface WasmBuild {
  wat: string;
  wasm: string;
  overrides: Record<string, string>;
  relaxedSimd: boolean;
}

const QUANT_DOT = fileURLToPath(new URL('../src/backend/cpu/wasm/quant-dot.wat', import.meta.url));

export const WASM_BUILDS: readonly WasmBuild[] = [
  { wat: QUANT_DOT, wasm: QUANT_DOT.replace(/\.wat$/, '.wasm'), overrides: {}, relaxedSimd: false },
  {
    // Unsigned 7-bit weight levels times int8 activations in one instruction (pmaddubsw), and broadcasts by a swizzle
    // without the range fix-up, where the runtime has relaxed SIMD.
    wat: QUANT_DOT,
    wasm: QUANT_DOT.replace(/\.wat$/, '-relaxed.wasm'),
    overrides: {
      $mulu7: '(i16x8.relaxed_dot_i8x16_i7x16_s (local.get $a) (local.get $w))',
      $lane16:
        '(i8x16.relaxed_swizzle (local.get $v) (i16x8.splat (i32.add (i32.mul (local.get $l) (i32.const 0x0202)) (i32.const 0x0100))))',
    },
    relaxedSimd: true,
  },
];

/** The binary for one build: SIMD and shared memory, no names section (the binary depends on the source only). */
export async function assemble(build: WasmBuild): Promise<Uint8Array> {
  const text = inlineHelpers(readFileSync(build.wat, 'utf8'), build.overrides);
  const features = { simd: true, threads: true, relaxed_simd: build.relaxedSimd };
  const module = (await wabt()).parseWat(build.wat, text, features);
  try {
    // wabt's validate() ignores the threads feature; the backend's WebAssembly.Module validates the binary.
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const build of WASM_BUILDS) {
    writeFileSync(build.wasm, await assemble(build));
    console.log(`wrote ${build.wasm}`);
  }
}
