import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FP8_QUANTIZATION,
  ggufWeightRole,
  isFp8,
  parseLoadQuantization,
  parseQuantization,
  quantTypeFor,
  type WeightRole,
} from '../../../src/primitives/quant/mix.ts';

const role = (kind: WeightRole['kind'], layer = 0, over: Partial<WeightRole> = {}): WeightRole => ({
  kind,
  layer,
  numLayers: 32,
  gqa: 4,
  experts: 0,
  cols: 4096,
  ...over,
});

test('quantization names: llama.cpp spellings, any case; k aliases mean their _M mix; unknown and fp8 refused in one line', () => {
  assert.deepEqual(parseQuantization('q4_k_m', '--quantization'), { name: 'Q4_K_M', base: 'q4_k', fileType: 15 });
  assert.deepEqual(parseQuantization('Q8_0', '--quantization'), { name: 'Q8_0', base: 'q8_0', fileType: 7 });
  assert.deepEqual(parseQuantization('q5_k', '--quantization'), { name: 'Q5_K_M', base: 'q5_k', fileType: 17 });
  assert.throws(
    () => parseQuantization('q4_k_s', '--quantization'),
    /^UserError: --quantization q4_k_s: unknown quantization \(expected one of q8_0, q4_0, .*q4_k_m.*\)$/,
  );
  assert.throws(
    () => parseQuantization('fp8', '--type'),
    /^UserError: --type fp8: FP8 is not a GGUF type \(expected one of q8_0, /,
  );
});

test('--quantization reads fp8 as the FP8 scheme, any case, and everything else as parseQuantization does', () => {
  assert.equal(parseLoadQuantization('FP8', 'PAGODA_QUANTIZATION'), FP8_QUANTIZATION);
  assert.ok(isFp8(parseLoadQuantization(' fp8 ', '--quantization')));
  assert.deepEqual(parseLoadQuantization('q8_0', '--quantization'), { name: 'Q8_0', base: 'q8_0', fileType: 7 });
  assert.throws(() => parseLoadQuantization('fp8_e5m2', '--quantization'), /FP8 is not a GGUF type/);
});

test('Q4_K_M on a 32-layer model: Q6_K for the LM head and for attn_v / ffn_down on use_more_bits layers', () => {
  const s = parseQuantization('q4_k_m', 'x');
  const moreBits = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  for (let layer = 0; layer < 32; layer++) {
    const want = moreBits.includes(layer) ? 'q6_k' : 'q4_k';
    assert.equal(quantTypeFor(s, role('attn_v', layer)), want, `attn_v ${layer}`);
    assert.equal(quantTypeFor(s, role('ffn_down', layer)), want, `ffn_down ${layer}`);
    assert.equal(quantTypeFor(s, role('attn_q', layer)), 'q4_k');
    assert.equal(quantTypeFor(s, role('ffn_up', layer)), 'q4_k');
  }
  assert.equal(quantTypeFor(s, role('output')), 'q6_k');
  assert.equal(quantTypeFor(s, role('token_embd')), 'q4_k');
});

test('Q2_K and Q3_K_M give attn_v, attn_output and ffn_down more bits; Q8_0 and Q4_0 are uniform but for the head', () => {
  const q2 = parseQuantization('Q2_K', 'x');
  assert.equal(quantTypeFor(q2, role('attn_v', 5)), 'q4_k');
  assert.equal(quantTypeFor(q2, role('attn_v', 5, { gqa: 1 })), 'q3_k');
  assert.equal(quantTypeFor(q2, role('attn_output', 5)), 'q3_k');
  assert.equal(quantTypeFor(q2, role('ffn_down', 5)), 'q3_k');
  assert.equal(quantTypeFor(q2, role('ffn_gate', 5)), 'q2_k');
  const q3 = parseQuantization('q3_k_m', 'x');
  assert.deepEqual(
    [0, 1, 2].map((l) => quantTypeFor(q3, role('attn_v', l))),
    ['q5_k', 'q5_k', 'q4_k'],
  );
  assert.deepEqual(
    [0, 1, 2].map((l) => quantTypeFor(q3, role('ffn_down', l))),
    ['q5_k', 'q5_k', 'q4_k'],
  );
  assert.equal(quantTypeFor(q3, role('attn_output', 9)), 'q4_k');
  assert.equal(quantTypeFor(parseQuantization('q8_0', 'x'), role('output')), 'q8_0');
  assert.equal(quantTypeFor(parseQuantization('q4_0', 'x'), role('output')), 'q6_k');
  assert.equal(quantTypeFor(parseQuantization('q4_0', 'x'), role('attn_v', 0)), 'q4_0');
});

test('rows narrower than a 256-value super-block fall back to a 32-value type as llama.cpp does', () => {
  const narrow = { cols: 288 };
  assert.equal(quantTypeFor(parseQuantization('q4_k_m', 'x'), role('attn_q', 4, narrow)), 'q5_0');
  assert.equal(quantTypeFor(parseQuantization('q5_k_m', 'x'), role('attn_q', 4, narrow)), 'q5_1');
  assert.equal(quantTypeFor(parseQuantization('q6_k', 'x'), role('attn_q', 4, narrow)), 'q8_0');
  assert.equal(quantTypeFor(parseQuantization('q2_k', 'x'), role('ffn_up', 4, narrow)), 'q4_0');
  assert.equal(quantTypeFor(parseQuantization('q4_k_m', 'x'), role('output', 0, narrow)), 'q8_0');
  assert.equal(quantTypeFor(parseQuantization('q4_0', 'x'), role('attn_q', 4, { cols: 48 })), null);
});

test('GGUF tensor names give the roles the mixes key on; token_embd is the head when the file has no output', () => {
  const model = { cols: 4096, numLayers: 32, gqa: 4, experts: 0, hasOutput: true };
  assert.deepEqual(ggufWeightRole('blk.7.attn_v.weight', model), { ...role('attn_v', 7) });
  assert.equal(ggufWeightRole('blk.0.ffn_down.weight', model)?.kind, 'ffn_down');
  assert.equal(ggufWeightRole('output.weight', model)?.kind, 'output');
  assert.equal(ggufWeightRole('token_embd.weight', model)?.kind, 'token_embd');
  assert.equal(ggufWeightRole('token_embd.weight', { ...model, hasOutput: false })?.kind, 'output');
  // An MoE layer's stacked experts and shared expert are its FFN matrices; its router is never quantized.
  assert.deepEqual(ggufWeightRole('blk.3.ffn_down_exps.weight', model), role('ffn_down', 3));
  assert.equal(ggufWeightRole('blk.3.ffn_gate_exps.weight', model)?.kind, 'ffn_gate');
  assert.equal(ggufWeightRole('blk.3.ffn_up_shexp.weight', model)?.kind, 'ffn_up');
  for (const name of [
    'blk.0.attn_norm.weight',
    'blk.0.attn_q.bias',
    'rope_freqs.weight',
    'position_embd.weight',
    'blk.0.ffn_gate_inp.weight',
    'blk.0.ffn_gate_inp_shexp.weight',
  ]) {
    assert.equal(ggufWeightRole(name, model), null, name);
  }
});

test("eight experts (Mixtral's shape): attn_k and attn_v in Q8_0 under every scheme, attn_output in Q5_K under the lower k mixes", () => {
  const eight = { experts: 8 };
  for (const name of ['q4_0', 'q5_1', 'q2_k', 'q4_k_m', 'q5_k_m']) {
    const s = parseQuantization(name, 'x');
    assert.equal(quantTypeFor(s, role('attn_v', 5, eight)), 'q8_0', name);
    assert.equal(quantTypeFor(s, role('attn_k', 5, eight)), 'q8_0', name);
    assert.equal(quantTypeFor(s, role('attn_q', 5, eight)), s.base, name);
  }
  assert.equal(quantTypeFor(parseQuantization('q4_k_m', 'x'), role('attn_output', 5, eight)), 'q5_k');
  assert.equal(quantTypeFor(parseQuantization('q2_k', 'x'), role('attn_output', 5, eight)), 'q5_k');
  assert.equal(quantTypeFor(parseQuantization('q5_k_m', 'x'), role('attn_output', 5, eight)), 'q5_k');
  assert.equal(quantTypeFor(parseQuantization('q4_0', 'x'), role('attn_output', 5, eight)), 'q4_0');
  // Other expert counts (Qwen3-MoE's 128, OLMoE's 64) take the dense rules.
  assert.equal(quantTypeFor(parseQuantization('q4_k_m', 'x'), role('attn_k', 5, { experts: 128 })), 'q4_k');
  assert.equal(quantTypeFor(parseQuantization('q4_k_m', 'x'), role('attn_output', 5, { experts: 128 })), 'q4_k');
});
