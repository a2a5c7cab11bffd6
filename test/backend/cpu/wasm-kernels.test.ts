import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { linearQuantized, linearQuantRows, quantInput } from '../../../src/backend/cpu/quant-matmul.ts';
import { type QuantCpuTensor, type QuantPart, stackQuantized } from '../../../src/backend/cpu/quant-tensor.ts';
import { type RowSource, rowRange } from '../../../src/backend/cpu/row-source.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { WasmArena } from '../../../src/backend/cpu/wasm/arena.ts';
import { SIMD_BUILDS, SIMD_MODULE, wasmRows } from '../../../src/backend/cpu/wasm/kernels.ts';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import type { HostTensor } from '../../../src/primitives/host-tensor.ts';
import { quantize } from '../../../src/primitives/quant/index.ts';
import { randomBlocks } from '../../../src/primitives/quant/random.ts';
import { mulberry32 } from '../../../src/util/random.ts';

function random(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rnd() - 0.5);
}

/** Random levels and scales straight as blocks (every byte pattern, Q8_0's −128 included), or quantized values. */
function host(type: QuantType, rows: number, cols: number, seed: number, blocks: boolean): HostTensor {
  const bytes = blocks ? randomBlocks(type, rows * cols, 0.1, seed, 'w') : quantize(type, random(rows * cols, seed));
  return { name: `w${seed}`, shape: [rows, cols], dtype: type, bytes };
}

/**
 * The JavaScript dot-product loops' rows (quant-dot.ts), a token at a time (more tokens would take the f32 kernel
 * there): the twin every SIMD result must equal bit for bit.
 */
function jsRows(x: Float32Array, p: QuantPart, T: number, n: number): Float32Array {
  const out = new Float32Array(T * p.rows);
  const js = { ...p, home: undefined };
  for (let t = 0; t < T; t++) {
    const row = out.subarray(t * p.rows, (t + 1) * p.rows);
    linearQuantRows(
      quantInput(js, x.subarray(t * n, (t + 1) * n), 1, n),
      js,
      row,
      1,
      n,
      p.rows,
      0,
      rowRange(0, p.rows),
    );
  }
  return out;
}

const WIDTHS: Record<string, number[]> = {
  q8_0: [32, 96, 4096],
  q4_0: [32, 160, 2048],
  q4_1: [32, 160, 2048],
  q5_0: [32, 96, 4096],
  q5_1: [32, 224, 4096],
  q2_k: [256, 512, 4096],
  q3_k: [256, 768, 4096],
  q4_k: [256, 768, 4096],
  q5_k: [256, 1024, 4096],
  q6_k: [256, 1280, 4096],
};

test('this runtime compiles both builds and runs the relaxed one (Node 20: SIMD, relaxed SIMD behind its flag)', () => {
  assert.ok(SIMD_BUILDS.simd);
  assert.ok(SIMD_BUILDS.relaxed);
  assert.equal(SIMD_MODULE, SIMD_BUILDS.relaxed);
});

for (const [build, module] of Object.entries(SIMD_BUILDS)) {
  test(`each ${build} SIMD kernel equals its JavaScript twin bit for bit, on random blocks of several widths, 1 to 5 tokens`, () => {
    const arena = new WasmArena();
    for (const [type, widths] of Object.entries(WIDTHS) as [QuantType, number[]][]) {
      for (const [i, n] of widths.entries()) {
        for (const blocks of [true, false]) {
          const w = stackQuantized([host(type, 37, n, 10 * i + 1, blocks)], false, arena);
          const p = w.parts[0]!;
          assert.ok(p.home, `${type} lies in the arena`);
          for (const T of [1, 2, 5]) {
            const x = random(T * n, 7 + T);
            const got = new Float32Array(T * 37).fill(Number.NaN);
            const input = quantInput(p, x, T, n);
            const taken = wasmRows(input, type, p.home, p.rowBytes, got, T, n, 37, 0, rowRange(0, 37), 0, module);
            assert.ok(taken, `${type} n=${n} has a SIMD kernel`);
            assert.deepEqual(
              got,
              jsRows(x, p, T, n),
              `${type} n=${n} T=${T} ${blocks ? 'random blocks' : 'quantized'}`,
            );
          }
        }
      }
    }
  });
}

/** The types with a four-token kernel, which takes a group's tokens four at a time (the rest one at a time). */
const FOUR_TOKEN_TYPES = ['q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k'] as const;

const exportsOf = (module: WebAssembly.Module) => WebAssembly.Module.exports(module).map((e) => e.name);

for (const [build, module] of Object.entries(SIMD_BUILDS)) {
  test(`the ${build} four-token kernels equal the JavaScript twins bit for bit: tokens in fours and a tail, row counts past a call's rows`, () => {
    const arena = new WasmArena();
    // 4096-wide rows go 30 (Q8_0), 56 (Q4_0, Q4_K), 46 (Q5_K) or 39 (Q6_K) to a call (CACHED_ROW_BYTES): 130 rows
    // end in a partial call.
    for (const type of FOUR_TOKEN_TYPES) {
      assert.ok(module && exportsOf(module).includes(`${type}_x4`), `${build} has a four-token ${type} kernel`);
      for (const [i, n] of [256, 768, 4096].entries()) {
        for (const blocks of [true, false]) {
          for (const rows of [1, 37, 130]) {
            const p = stackQuantized([host(type, rows, n, 100 * i + rows, blocks)], false, arena).parts[0]!;
            for (let T = 1; T <= 9; T++) {
              const x = random(T * n, T + rows);
              const got = new Float32Array(T * rows).fill(Number.NaN);
              const input = quantInput(p, x, T, n);
              assert.ok(wasmRows(input, type, p.home!, p.rowBytes, got, T, n, rows, 0, rowRange(0, rows), 0, module));
              const what = `${type} n=${n} rows=${rows} T=${T} ${blocks ? 'random blocks' : 'quantized'}`;
              assert.deepEqual(got, jsRows(x, p, T, n), what);
            }
          }
        }
      }
    }
  });
}

test('rows r0..r1 land at the output rows a part starts at, past a slot of outputs, from any thread slot', () => {
  const arena = new WasmArena();
  // More rows than one kernel call writes into a slot (16384): the rest in a second call.
  const [rows, n, m, first, T] = [16392, 32, 16400, 5, 2];
  const p = stackQuantized([host('q8_0', rows, n, 3, true)], false, arena).parts[0]!;
  const x = random(T * n, 2);
  const want = jsRows(x, p, T, n);
  for (const slot of [0, 3, 15]) {
    const got = new Float32Array(T * m).fill(Number.NaN);
    const [r0, r1] = [3, rows - 1];
    assert.ok(
      wasmRows(quantInput(p, x, T, n), 'q8_0', p.home!, p.rowBytes, got, T, n, m, first, rowRange(r0, r1), slot),
    );
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < m; r++) {
        const inside = r >= first + r0 && r < first + r1;
        const value = got[t * m + r]!;
        if (inside) assert.equal(value, want[t * rows + r - first]!, `slot ${slot} t=${t} row ${r}`);
        else assert.ok(Number.isNaN(value), `slot ${slot} t=${t} row ${r} written outside its range`);
      }
    }
  }
});

test('more tokens than one slot holds go in groups, each group taking the rows while they are in cache', () => {
  const arena = new WasmArena();
  // 4096 q8_K-packed values take 4,928 bytes a token: 53 fit a 256 KiB slot, so 60 make two groups (52 and 8: whole
  // fours for the four-token kernel).
  const [rows, n, T] = [70, 4096, 60];
  const p = stackQuantized([host('q4_k', rows, n, 5, true)], false, arena).parts[0]!;
  const x = random(T * n, 3);
  const got = new Float32Array(T * rows).fill(Number.NaN);
  assert.ok(wasmRows(quantInput(p, x, T, n), 'q4_k', p.home!, p.rowBytes, got, T, n, rows, 0, rowRange(0, rows), 1));
  assert.deepEqual(got, jsRows(x, p, T, n));
});

test('a thread taking several ranges (claimed chunks, out of order) packs once per token group and fills exactly them', () => {
  const arena = new WasmArena();
  const [rows, n] = [90, 4096];
  const p = stackQuantized([host('q6_k', rows, n, 6, true)], false, arena).parts[0]!;
  const ranges: RowSource = (run) => {
    for (const [a, b] of [
      [40, 90],
      [0, 7],
      [12, 40],
    ])
      run(a!, b!);
  };
  for (const T of [1, 3, 60]) {
    const x = random(T * n, T);
    const want = jsRows(x, p, T, n);
    const got = new Float32Array(T * rows).fill(Number.NaN);
    assert.ok(wasmRows(quantInput(p, x, T, n), 'q6_k', p.home!, p.rowBytes, got, T, n, rows, 0, ranges, 2));
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < rows; r++) {
        const v = got[t * rows + r]!;
        if (r >= 7 && r < 12) assert.ok(Number.isNaN(v), `T=${T} row ${r} is not in a range`);
        else assert.equal(v, want[t * rows + r], `T=${T} token ${t} row ${r}`);
      }
    }
  }
});

test('slots beyond the last and activations too wide for a slot are left to the JavaScript kernels', () => {
  const arena = new WasmArena();
  const out = new Float32Array(4).fill(Number.NaN);
  const q4 = stackQuantized([host('q4_k', 4, 256, 2, true)], false, arena).parts[0]!;
  const x = quantInput(q4, random(256, 1), 1, 256);
  assert.equal(wasmRows(x, 'q4_k', q4.home!, q4.rowBytes, out, 1, 256, 4, 0, rowRange(0, 4), 16), false);
  const wide = 256 * 1024;
  const big = stackQuantized([host('q4_k', 1, wide, 3, true)], false, arena).parts[0]!;
  const xw = quantInput(big, random(wide, 1), 1, wide);
  assert.equal(wasmRows(xw, 'q4_k', big.home!, big.rowBytes, out, 1, wide, 1, 0, rowRange(0, 1), 0), false);
  assert.ok(out.every(Number.isNaN), 'nothing written');
  // Through linear(), each still gives the JavaScript result.
  for (const [w, n] of [
    [q4, 256],
    [big, wide],
  ] as const) {
    const tensor = { shape: [w.rows, n], parts: [w] } as unknown as QuantCpuTensor;
    const xs = random(n, 4);
    assert.deepEqual(linearQuantized(xs, tensor, 1, n, null, null), jsRows(xs, w, 1, n));
  }
});

test('a weight whose parts lie in two memories (an arena spills over at 2 GiB) gives the JavaScript result', () => {
  const arena = new WasmArena();
  // Fill the first memory (reserved, never touched: no resident pages) but for room for the first part's 11520 bytes.
  assert.ok(arena.allocate(WasmArena.maxPartBytes - 12000));
  const parts = [host('q4_k', 40, 512, 1, true), host('q6_k', 24, 512, 2, true)];
  const w = stackQuantized(parts, false, arena);
  assert.notEqual(w.parts[0]!.home!.memory, w.parts[1]!.home!.memory);
  const twin = stackQuantized(parts, false, null);
  assert.equal(twin.parts[0]!.home, undefined);
  for (const T of [1, 3]) {
    const x = random(T * 512, T);
    assert.deepEqual(linearQuantized(x, w, T, 512, null, null), linearQuantized(x, twin, T, 512, null, null), `T=${T}`);
  }
});

test('SIMD linear over worker threads equals the JavaScript kernels on one thread, bias included', () => {
  const js = new CpuBackend({ threads: 1, simd: false });
  const three = new CpuBackend({ threads: 3 });
  const parts = [host('q4_k', 200, 1024, 1, true), host('q6_k', 136, 1024, 2, true), host('q4_0', 64, 1024, 3, true)];
  const bias = new CpuTensor([400], random(400, 5));
  const wJs = js.loadStacked(parts) as QuantCpuTensor;
  const w3 = three.loadStacked(parts) as QuantCpuTensor;
  assert.ok(w3.parts.every((p) => p.home) && wJs.parts.every((p) => !p.home));
  for (const T of [1, 2, 3]) {
    const x = new CpuTensor([T, 1024], random(T * 1024, 8));
    const want = js.toHost(js.linear(x, wJs, bias));
    for (let r = 0; r < 2; r++) assert.deepEqual(three.toHost(three.linear(x, w3, bias)), want, `T=${T}`);
  }
});

test('prefill-sized SIMD linear over worker threads (four-token kernels, claimed row chunks) equals the JavaScript dot products', () => {
  const three = new CpuBackend({ threads: 3 });
  const [n, m] = [4096, 336];
  const parts = [host('q4_k', 200, n, 1, true), host('q6_k', 136, n, 2, false)];
  const w3 = three.loadStacked(parts) as QuantCpuTensor;
  const twin = stackQuantized(parts, false, null);
  const bias = random(m, 5);
  for (const T of [5, 16]) {
    const x = random(T * n, T);
    const want = new Float32Array(T * m);
    let first = 0;
    for (const p of twin.parts) {
      const rows = jsRows(x, p, T, n);
      for (let t = 0; t < T; t++) {
        for (let r = 0; r < p.rows; r++) want[t * m + first + r] = rows[t * p.rows + r]! + bias[first + r]!;
      }
      first += p.rows;
    }
    const got = three.toHost(three.linear(new CpuTensor([T, n], x), w3, new CpuTensor([m], bias)));
    assert.deepEqual(got, want, `T=${T}`);
  }
});

test('quantized linear over worker threads, prefill-sized too (row chunks claimed, token groups), equals one thread', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  const parts = [host('q4_k', 200, 4096, 1, true), host('q6_k', 136, 4096, 2, true), host('q8_0', 64, 4096, 3, true)];
  const [w1, w3] = [one.loadStacked(parts), three.loadStacked(parts)];
  for (const T of [4, 17, 60]) {
    const x = new CpuTensor([T, 4096], random(T * 4096, T));
    assert.deepEqual(three.toHost(three.linear(x, w3)), one.toHost(one.linear(x, w1)), `T=${T}`);
  }
});
