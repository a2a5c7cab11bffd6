import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseModelConfig } from '../../src/loader/hf-config.ts';
import { longRopeChoice, ropeSpecFromConfig } from '../../src/models/rope.ts';

/** A minimal config with the given head size and rope settings (transformers 4 style: top-level rope keys). */
function config(headDim: number, theta: number, ropeScaling?: Record<string, unknown>, extra = {}) {
  return parseModelConfig({
    architectures: ['LlamaForCausalLM'],
    vocab_size: 10,
    hidden_size: headDim * 2,
    num_attention_heads: 2,
    num_hidden_layers: 1,
    rope_theta: theta,
    rope_scaling: ropeScaling,
    ...extra,
  });
}

/** Expected values below were computed separately from the published formulas in float64. */
function close(got: Float32Array, want: Record<number, number>, rel = 1e-5): void {
  for (const [i, w] of Object.entries(want)) {
    const g = got[Number(i)]!;
    assert.ok(Math.abs(g - w) <= rel * Math.abs(w), `inv_freq[${i}] = ${g}, expected ${w}`);
  }
}

test('default: 1 / theta^(2i/d)', () => {
  const r = ropeSpecFromConfig(config(8, 10000));
  close(r.invFreq, { 0: 1, 1: 0.1, 2: 0.01, 3: 0.001 });
  assert.equal(r.invFreq.length, 4);
  assert.equal(r.mscale, 1);
  assert.equal(r.style, 'neox');
  assert.equal(r.rotaryDim, 8);
});

test('linear: every frequency divided by the factor', () => {
  close(ropeSpecFromConfig(config(8, 10000, { type: 'linear', factor: 4 })).invFreq, { 0: 0.25, 2: 0.0025 });
});

test('dynamic NTK: base raised for factor x the trained length', () => {
  // base' = 10000 * (2*2 - 1)^(64/62) = 31082.2367; inv_freq[5] = base'^(-10/64)
  close(ropeSpecFromConfig(config(64, 10000, { type: 'dynamic', factor: 2 })).invFreq, { 5: 0.19863005319821675 });
});

test('llama3: high frequencies kept, low ones divided by factor, the middle blended', () => {
  const r = ropeSpecFromConfig(
    config(128, 500000, {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    }),
  );
  close(r.invFreq, {
    0: 1, // wavelength 6.3: kept
    20: 0.016560440080994446, // 379: kept
    30: 0.0013718935677611381, // 2948: blended
    32: 0.0005248461609929547, // 4443: blended
    34: 0.00017850781276799638, // 6695: blended
    40: 3.428102195952591e-5, // 22911: divided by 8
    63: 3.068925988914511e-7,
  });
});

test('yarn: ramp between beta_fast and beta_slow correction dims, attention factor 0.1 ln(s) + 1', () => {
  const r = ropeSpecFromConfig(
    config(
      64,
      10000,
      { type: 'yarn', factor: 4, original_max_position_embeddings: 2048 },
      { max_position_embeddings: 8192 },
    ),
  );
  // correction range [floor(8.06), ceil(20.1)] = [8, 21]
  close(r.invFreq, {
    0: 1,
    5: 0.23713737056616555,
    10: 0.049745578766838564,
    15: 0.00794983930712751,
    20: 0.0009730085108210396,
    31: 3.33380358040831e-5,
  });
  assert.ok(Math.abs(r.mscale - 1.138629436111989) < 1e-12);
  const explicit = ropeSpecFromConfig(config(64, 10000, { type: 'yarn', factor: 4, attention_factor: 1.5 }));
  assert.equal(explicit.mscale, 1.5);
});

test('partial rotary: only the leading fraction of each head is rotated', () => {
  const r = ropeSpecFromConfig(config(64, 10000, undefined, { partial_rotary_factor: 0.5 }));
  assert.equal(r.rotaryDim, 32);
  assert.equal(r.invFreq.length, 16);
  close(r.invFreq, { 1: 10000 ** (-2 / 32) });
});

test('gptj pairing can be asked for', () => {
  assert.equal(ropeSpecFromConfig(config(8, 10000), 'gptj').style, 'gptj');
});

describe('longrope (Phi-3, Phi-4)', () => {
  const short = [1, 1.1, 1.3, 1.6, 2, 2.5];
  const long = [1, 1.5, 2.5, 4, 6, 8];
  // head 16, rotary 12: 6 frequencies; trained on 64 positions, extended to 512
  const phi = (scaling: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    config(16, 10000, scaling, { max_position_embeddings: 512, partial_rotary_factor: 0.75, ...extra });
  const longrope = { type: 'longrope', short_factor: short, long_factor: long, original_max_position_embeddings: 64 };
  const divided = (factors: number[]) =>
    Object.fromEntries(factors.map((f, i) => [i, 10000 ** (-(2 * i) / 12) / f])) as Record<number, number>;

  test('short factors while the max model length stays within the trained length, long ones beyond it', () => {
    const atTrained = ropeSpecFromConfig(phi(longrope), 'neox', 64);
    assert.equal(atTrained.rotaryDim, 12);
    close(atTrained.invFreq, divided(short));
    close(ropeSpecFromConfig(phi(longrope), 'neox', 65).invFreq, divided(long));
    close(ropeSpecFromConfig(phi(longrope)).invFreq, divided(long), 1e-6);
  });

  test('attention factor sqrt(1 + ln(max / original) / ln(original)) whichever factors apply, unless given', () => {
    // ln 8 / ln 64 = 1/2
    for (const len of [64, 512])
      assert.ok(Math.abs(ropeSpecFromConfig(phi(longrope), 'neox', len).mscale - Math.sqrt(1.5)) < 1e-12);
    assert.equal(ropeSpecFromConfig(phi({ ...longrope, attention_factor: 1.25 })).mscale, 1.25);
    assert.equal(ropeSpecFromConfig(phi(longrope, { max_position_embeddings: 64 })).mscale, 1);
  });

  test('4.x configs: original_max_position_embeddings at the top level, and the older name "su"', () => {
    const legacy = phi(
      { type: 'su', short_factor: short, long_factor: long },
      { original_max_position_embeddings: 64 },
    );
    assert.deepEqual(longRopeChoice(legacy, 64), { factors: 'short', originalMax: 64, maxModelLen: 64 });
    assert.deepEqual(longRopeChoice(legacy), { factors: 'long', originalMax: 64, maxModelLen: 512 });
    close(ropeSpecFromConfig(legacy).invFreq, divided(long));
    assert.equal(longRopeChoice(config(8, 10000)), null);
  });

  test('factor lists of the wrong length, or no trained length, are one-line errors', () => {
    assert.throws(
      () => ropeSpecFromConfig(phi({ ...longrope, long_factor: [1, 2] })),
      /rope scaling "longrope" needs "long_factor" as 6 numbers \(rotary dim 12 \/ 2\), found 2 entries$/,
    );
    const { original_max_position_embeddings: _, ...noOriginal } = longrope;
    assert.throws(() => ropeSpecFromConfig(phi(noOriginal)), /needs a numeric "original_max_position_embeddings"$/);
  });
});
