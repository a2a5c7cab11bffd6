import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { readJson } from '../../src/loader/hf-config.ts';
import { encodeSafetensors, openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import type { Model } from '../../src/models/model.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';
import { goldenPatch, loadPatchedModel } from '../helpers/patched-model.ts';

const TOL = 1e-4;
const gemma2 = modelFixture('tiny-gemma2');
const gemma3 = modelFixture('tiny-gemma3');
const cpu = () => new CpuBackend({ threads: 1 });
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-gemma-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
}
const golden = (dir: string) => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
const lastLogits = (model: Model, ids: number[]) => new PagedSession(model, 4).step([{ seq: 0, tokens: ids }])[0]!;

function assertGolden(model: Model, fixture: string): void {
  for (const p of golden(fixture)) {
    const diff = maxAbsDiff(lastLogits(model, p.input_ids), p.last_logits);
    assert.ok(diff < TOL, `prompt of ${p.input_ids.length} tokens: last logits differ by ${diff}`);
  }
}

/** An empty model folder in the test's temporary folder. */
function folder(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  return dir;
}

/** A fixture's weights under a config.json rewritten by `edit`. */
function restyled(fixture: string, name: string, edit: (raw: Record<string, unknown>) => Record<string, unknown>) {
  const dir = folder(name);
  symlinkSync(join(fixture, 'model.safetensors'), join(dir, 'model.safetensors'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(edit(readJson(join(fixture, 'config.json')))));
  return dir;
}

describe('tiny-gemma2 with its attention soft-cap', { skip: gemma2.skip }, () => {
  test('changes the logits; chunked prefill and block-size-4 decode agree with one prefill', () => {
    const capped = loadModel(gemma2.path, cpu());
    const uncapped = loadPatchedModel(gemma2.path, cpu(), { attn_logit_softcapping: null });
    for (const p of golden(gemma2.path)) {
      const n = p.input_ids.length;
      const all = new PagedSession(capped, 4).step([{ seq: 0, tokens: p.input_ids, logits: 'all' }]);
      assert.ok(maxAbsDiff(all[n - 1]!, lastLogits(uncapped, p.input_ids)) > 1e-2, 'the soft-cap bends the scores');
      // Two chunks (the second ending 3 tokens short, past the sliding window of 8), then one token per step.
      const session = new PagedSession(capped, 4);
      session.step([{ seq: 0, tokens: p.input_ids.slice(0, 5), logits: 'none' }]);
      const chunk = session.step([{ seq: 0, tokens: p.input_ids.slice(5, n - 3) }])[0]!;
      assert.ok(maxAbsDiff(chunk, all[n - 4]!) < TOL, 'chunked prefill');
      for (let i = n - 3; i < n; i++) {
        const row = session.step([{ seq: 0, tokens: [p.input_ids[i]!] }])[0]!;
        assert.ok(maxAbsDiff(row, all[i]!) < TOL, `decode at position ${i}`);
      }
    }
  });
});

describe('the 4.x config style on the fixtures', { skip: gemma2.skip || gemma3.skip }, () => {
  test('tiny-gemma3 with rope_theta, rope_local_base_freq and sliding_window_pattern gives its golden', () => {
    const dir = restyled(gemma3.path, 'gemma3-4x', ({ rope_parameters: _, layer_types: __, ...raw }) => ({
      ...raw,
      rope_theta: 1000000.0,
      rope_local_base_freq: 10000.0,
      rope_scaling: null,
      sliding_window_pattern: 3,
    }));
    assertGolden(loadModel(dir, cpu()), gemma3.path);
  });

  test('tiny-gemma2 with rope_theta and no layer_types (even-indexed layers slide) gives its golden', () => {
    const dir = restyled(gemma2.path, 'gemma2-4x', ({ rope_parameters: _, layer_types: __, ...raw }) => ({
      ...raw,
      rope_theta: 10000.0,
      ...goldenPatch(gemma2.path),
    }));
    assertGolden(loadModel(dir, cpu()), gemma2.path);
  });
});

describe('Gemma3ForConditionalGeneration', { skip: gemma3.skip }, () => {
  /** tiny-gemma3 saved as the multimodal model: config under text_config, weights under `prefix`, a vision tower. */
  function multimodal(name: string, prefix: string): string {
    const dir = folder(name);
    const { architectures: _, ...text } = readJson(join(gemma3.path, 'config.json'));
    const config = {
      architectures: ['Gemma3ForConditionalGeneration'],
      model_type: 'gemma3',
      text_config: text,
      vision_config: { model_type: 'siglip_vision_model', hidden_size: 8 },
      eos_token_id: text.eos_token_id,
      dtype: 'bfloat16',
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const source = openSafetensors(gemma3.path);
    const tensors = source.names().map((n) => {
      const t = source.get(n);
      return { name: n.replace(/^model\./, prefix), shape: [...t.shape], data: toFloat32(t) };
    });
    source.close();
    tensors.push({ name: 'model.vision_tower.patch_embedding.weight', shape: [2, 2], data: new Float32Array(4) });
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    return dir;
  }

  for (const prefix of ['model.language_model.', 'language_model.model.']) {
    test(`loads its text model from text_config and weights under ${prefix}`, () => {
      const model = loadModel(multimodal(prefix.replaceAll('.', '-'), prefix), cpu());
      assert.equal(model.config.architecture, 'Gemma3ForConditionalGeneration');
      assertGolden(model, gemma3.path);
    });
  }
});
