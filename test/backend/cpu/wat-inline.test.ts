import assert from 'node:assert/strict';
import { test } from 'node:test';
import wabt from 'wabt';
import { inlineHelpers } from '../../../bin/wat-inline.ts';

const MODULE = `(module
  ;; a helper of a helper, its parameter read twice
  (func $twice (param $x i32) (result i32) (i32.add (local.get $x) (local.get $x)))
  (func $mad (param $a i32) (param $b i32) (result i32) (i32.add (call $twice (local.get $a)) (local.get $b)))
  (func $counted (param $a i32) (result i32) (local $t i32) (local.get $a))
  (global $calls (mut i32) (i32.const 0))
  (func $bump (result i32) (global.set $calls (i32.add (global.get $calls) (i32.const 1))) (global.get $calls))
  (func (export "f") (param $p i32) (result i32) (local $q i32)
    (local.set $q (call $counted (local.get $p)))
    (call $mad (call $bump) (i32.mul (local.get $q) (i32.const 10))))
  (func (export "calls") (result i32) (global.get $calls)))`;

async function run(text: string) {
  const module = (await wabt()).parseWat('t.wat', text, {});
  const binary = new Uint8Array(module.toBinary({}).buffer);
  module.destroy();
  const instance = new WebAssembly.Instance(new WebAssembly.Module(binary));
  return instance.exports as unknown as { f(p: number): number; calls(): number };
}

test('inlining a helper keeps what the module computes and evaluates each argument once', async () => {
  const text = inlineHelpers(MODULE);
  assert.doesNotMatch(text, /call \$(twice|mad)\b/);
  assert.match(text, /call \$counted/, 'a function with locals stays a function');
  assert.match(text, /call \$bump/, 'so does one of several expressions');
  const [plain, inlined] = [await run(MODULE), await run(text)];
  for (const p of [0, 3, -7]) assert.equal(inlined.f(p), plain.f(p));
  assert.equal(inlined.calls(), 3, '$bump, an argument read twice inside $twice, ran once a call');
});

test('an override replaces a helper body; naming a helper that does not exist is an error', async () => {
  const text = inlineHelpers(MODULE, { $twice: '(i32.mul (local.get $x) (i32.const 3))' });
  assert.equal((await run(text)).f(2), 1 * 3 + 20);
  assert.throws(() => inlineHelpers(MODULE, { $nope: '(i32.const 0)' }), /no helper \$nope/);
});

test('a function with unnamed parameters stays a function; an unnamed exported one keeps its declarations in front', async () => {
  const text = `(module
    (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func $twice (param $x i32) (result i32) (i32.add (local.get $x) (local.get $x)))
    (func (export "f") (param $p i32) (result i32) (call $add (call $twice (local.get $p)) (i32.const 1))))`;
  const inlined = inlineHelpers(text);
  assert.match(inlined, /call \$add/);
  assert.doesNotMatch(inlined, /call \$twice/);
  assert.equal((await run(inlined)).f(5), 11);
});
