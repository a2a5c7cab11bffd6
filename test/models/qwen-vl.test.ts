import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { readJson } from '../../src/loader/hf-config.ts';
import { loadModel } from '../../src/models/load.ts';
import { FolderVariants, readTensors, type Tensors } from '../helpers/bert-variants.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';

/**
 * The Qwen VL models' language models, for text alone: a tiny Qwen2 / Qwen3 saved as Qwen2.5-VL / Qwen3-VL would be
 * (the text config at the top with 4.x's "mrope" rope_scaling, or under text_config with the weights under
 * model.language_model., a vision tower beside them, unread) gives the fixture's transformers goldens: with every
 * position a text token's, M-RoPE's three sections all rotate by that position, which is the plain rotation.
 */
const qwen2 = modelFixture('tiny-qwen2');
const qwen3 = modelFixture('tiny-qwen3');
const variants = { [qwen2.path]: new FolderVariants(qwen2.path), [qwen3.path]: new FolderVariants(qwen3.path) };
after(() => {
  for (const v of Object.values(variants)) v.cleanup();
});

/** `fixture`'s folder with `config`, its weights renamed by `rename` and a vision tensor added beside them. */
function saved(fixture: string, config: Record<string, unknown>, rename: (n: string) => string, vision: string) {
  const tensors: Tensors = new Map([...readTensors(fixture)].map(([n, t]) => [rename(n), t]));
  tensors.set(vision, { shape: [2, 2], data: new Float32Array(4) });
  return variants[fixture]!.make(config, tensors);
}

function assertGolden(dir: string, fixture: string): void {
  const model = loadModel(dir, new CpuBackend({ threads: 1 }));
  const prompts = readJson(join(fixture, 'golden.json')).prompts as { input_ids: number[]; last_logits: number[] }[];
  for (const p of prompts) {
    const logits = new PagedSession(model, 4).step([{ seq: 0, tokens: p.input_ids }])[0]!;
    const diff = maxAbsDiff(logits, p.last_logits);
    assert.ok(diff < 1e-4, `${dir}: prompt of ${p.input_ids.length} tokens: last logits differ by ${diff}`);
  }
}

/** The fixture's config without the keys a VL config holds elsewhere. */
function textConfig(fixture: string): Record<string, unknown> {
  const { architectures: _, rope_parameters: rope, ...text } = readJson(join(fixture, 'config.json'));
  return { ...text, rope_parameters: { ...(rope as object), mrope_section: [2, 3, 3] } };
}

describe('Qwen2.5-VL: its language model, for text alone', { skip: qwen2.skip }, () => {
  test('4.x layout: the text config at the top, rope_scaling "mrope", weights under model.', () => {
    const { rope_parameters: _, ...text } = textConfig(qwen2.path);
    const config = {
      ...text,
      architectures: ['Qwen2_5_VLForConditionalGeneration'],
      model_type: 'qwen2_5_vl',
      rope_theta: 1000000,
      rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] },
      vision_config: { depth: 1, hidden_size: 8 },
    };
    assertGolden(
      saved(qwen2.path, config, (n) => n, 'visual.blocks.0.attn.qkv.weight'),
      qwen2.path,
    );
  });
  test('transformers 5 layout: text_config, weights under model.language_model.', () => {
    const config = {
      architectures: ['Qwen2_5_VLForConditionalGeneration'],
      model_type: 'qwen2_5_vl',
      text_config: { ...textConfig(qwen2.path), model_type: 'qwen2_5_vl_text' },
      vision_config: { depth: 1, hidden_size: 8 },
      tie_word_embeddings: true,
    };
    const rename = (n: string) => n.replace(/^model\./, 'model.language_model.');
    assertGolden(saved(qwen2.path, config, rename, 'model.visual.patch_embed.proj.weight'), qwen2.path);
  });
});

test('Qwen3-VL: its language model, for text alone (text_config, weights under model.language_model.)', {
  skip: qwen3.skip,
}, () => {
  const config = {
    architectures: ['Qwen3VLForConditionalGeneration'],
    model_type: 'qwen3_vl',
    text_config: {
      ...textConfig(qwen3.path),
      model_type: 'qwen3_vl_text',
      rope_parameters: { rope_type: 'default', rope_theta: 1000000, mrope_interleaved: true, mrope_section: [6, 5, 5] },
    },
    vision_config: { depth: 1, hidden_size: 8 },
    tie_word_embeddings: false,
  };
  const rename = (n: string) => n.replace(/^model\./, 'model.language_model.');
  assertGolden(saved(qwen3.path, config, rename, 'model.visual.patch_embed.proj.weight'), qwen3.path);
});
