import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuantizationConfig } from '../../src/loader/quantization-config.ts';

const parse = (quantization_config: unknown) => parseQuantizationConfig({ quantization_config }, 'm/config.json');
const group = (weights: Record<string, unknown>) => ({ targets: ['Linear'], weights });
const fp8Weights = (strategy: string, extra = {}) => ({ num_bits: 8, type: 'float', strategy, ...extra });

test('no quantization_config is no FP8 format', () => {
  assert.equal(parseQuantizationConfig({}, 'm/config.json'), null);
  assert.equal(parse(null), null);
});

test('quant_method fp8: blocks scaled by weight_scale_inv, or without weight_block_size one weight_scale per tensor', () => {
  assert.deepEqual(parse({ quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 64] }), {
    scaleSuffix: 'weight_scale_inv',
    layouts: [{ kind: 'block', rows: 128, cols: 64 }],
    summary: 'FP8 checkpoint (block 128x64)',
  });
  assert.deepEqual(parse({ quant_method: 'fp8', activation_scheme: 'static' }), {
    scaleSuffix: 'weight_scale',
    layouts: [{ kind: 'tensor' }],
    summary: 'FP8 checkpoint (per-tensor scales)',
  });
  assert.throws(
    () => parse({ quant_method: 'fp8', weight_block_size: [128] }),
    /^UserError: m\/config\.json: quantization_config\.weight_block_size is \[128\], expected two positive integers such as \[128, 128\]$/,
  );
  assert.throws(() => parse({ quant_method: 'fp8', fmt: 'e5m2' }), /quantization_config\.fmt "e5m2" is not supported/);
});

test('compressed-tensors: groups of different FP8 strategies are all accepted and named', () => {
  const got = parse({
    quant_method: 'compressed-tensors',
    format: 'float-quantized',
    config_groups: {
      attn: group(fp8Weights('channel')),
      mlp: group(fp8Weights('tensor')),
      more: group(fp8Weights('channel')),
      experts: group(fp8Weights('block', { block_structure: [128, 128] })),
    },
  });
  assert.deepEqual(got?.layouts, [{ kind: 'channel' }, { kind: 'tensor' }, { kind: 'block', rows: 128, cols: 128 }]);
  assert.equal(got?.summary, 'FP8 checkpoint (compressed-tensors, per-channel / per-tensor / block 128x128 scales)');
  assert.throws(
    () => parse({ quant_method: 'compressed-tensors', config_groups: { g: group(fp8Weights('group')) } }),
    /^UserError: m\/config\.json: quantization_config\.config_groups\.g\.weights\.strategy "group" is not supported \(expected "tensor", "channel" or "block"\)$/,
  );
  assert.throws(
    () =>
      parse({
        quant_method: 'compressed-tensors',
        config_groups: { g: group(fp8Weights('channel')) },
        sparsity_config: { format: 'sparse-24-bitmask', sparsity_structure: '2:4' },
      }),
    /^UserError: m\/config\.json: quantization_config\.sparsity_config\.format "sparse-24-bitmask" is not supported \(sparse weights\)$/,
  );
  assert.throws(
    () => parse({ quant_method: 'compressed-tensors', config_groups: {} }),
    /quantization_config\.config_groups is missing or empty/,
  );
});

test('a quantization_config without a method, or that is not an object, is one line', () => {
  assert.throws(
    () => parse({ bits: 4 }),
    /^UserError: m\/config\.json: quantization_config has no quant_method \(pagoda reads/,
  );
  assert.throws(() => parse('awq'), /^UserError: m\/config\.json: quantization_config is not an object$/);
});
