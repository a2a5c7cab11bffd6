import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { hfWeightRole } from '../../src/models/quantize-at-load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { relL2 } from '../helpers/gpu.ts';
import { PagedSession } from '../helpers/paged-session.ts';
import { writeTinyGptBigCodeFolder } from '../helpers/random-folders.ts';

/**
 * Matrices left as stored: a mixture-of-experts layer's router and experts (the CPU backend stacks experts in three
 * dimensions, which it keeps in float).
 */
const KEPT = /\.(mlp\.gate|mlp\.experts\.\d+\.\w+_proj|block_sparse_moe\.\S+|mlp\.shared_expert\S*)\.weight$/;

for (const name of ['tiny-llama', 'tiny-qwen3', 'tiny-gemma2', 'tiny-gemma3', 'tiny-phi3-longrope', 'tiny-qwen3-moe']) {
  const fixture = modelFixture(name);
  test(`${name}: --quantization q8_0 quantizes every dense matrix, and the model still computes`, {
    skip: fixture.skip,
  }, () => {
    const cfg = loadModelConfig(fixture.path);
    const source = openSafetensors(fixture.path);
    try {
      for (const t of source.names()) {
        const shape = source.describe(t).shape;
        if (shape.length !== 2) continue;
        const role = hfWeightRole(t, shape[1]!, cfg, cfg.tieWordEmbeddings && !source.has('lm_head.weight'));
        assert.equal(role === null, KEPT.test(t), `${t}: role ${role?.kind ?? 'none'}`);
      }
    } finally {
      source.close();
    }
    const logits = (quantization?: string) => {
      const model = loadModel(fixture.path, new CpuBackend({ threads: 1 }), {
        quantization: quantization ? parseQuantization(quantization, 'test') : undefined,
      });
      return new PagedSession(model).step([{ seq: 0, tokens: [1, 5, 9, 13, 17, 21] }])[0]!;
    };
    const error = relL2(logits('q8_0'), logits());
    // Quantized weights move the logits a little (Q8_0: about 1% on these random fixtures), never not at all.
    assert.ok(error > 1e-4 && error < 0.1, `logits moved by ${error}`);
  });
}

const gpt2 = modelFixture('tiny-gpt2');
test('GPT-2 refuses --quantization in one line rather than running unquantized', { skip: gpt2.skip }, () => {
  assert.throws(
    () => loadModel(gpt2.path, new CpuBackend({ threads: 1 }), { quantization: parseQuantization('q8_0', 'test') }),
    /^UserError: --quantization q8_0: GPT-2's weights \(Conv1D, stored transposed\) are not quantized yet$/,
  );
});

test('GPTBigCode refuses --quantization in one line too (its matrices have no quantization roles yet)', {
  skip: gpt2.skip,
}, () => {
  const dir = writeTinyGptBigCodeFolder(join(mkdtempSync(join(tmpdir(), 'pagoda-bigcode-')), 'm'), gpt2.path);
  assert.throws(
    () => loadModel(dir, new CpuBackend({ threads: 1 }), { quantization: parseQuantization('q4_k_m', 'test') }),
    /^UserError: --quantization q4_k_m: GPTBigCode's weights are not quantized yet$/,
  );
});
