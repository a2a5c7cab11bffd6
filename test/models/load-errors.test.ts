import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { UserError } from '../../src/util/errors.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const fixture = modelFixture('tiny-llama');

describe('loadModel errors', { skip: fixture.skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pagoda-load-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of tiny-llama with config.json edited. */
  function variant(name: string, edit: (cfg: Record<string, unknown>) => void): string {
    const dir = join(tmp, name);
    cpSync(fixture.path, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    edit(cfg);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    return dir;
  }

  /** Loading fails with a one-line UserError matching `pattern`. */
  function assertOneLine(dir: string, pattern: RegExp): void {
    assert.throws(
      () => loadModel(dir, new CpuBackend()),
      (err: unknown) => {
        assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
        assert.ok(!err.message.includes('\n'), `message spans lines: ${err.message}`);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }

  test('a tensor whose shape does not match the config names the tensor, its shape and the expected one', () => {
    const dir = variant('shape', (c) => {
      c.intermediate_size = 128;
    });
    assertOneLine(dir, /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[160, 64\], expected \[128, 64\]/);
  });

  test('a missing tensor is named', () => {
    const dir = variant('missing', (c) => {
      c.num_hidden_layers = 4;
    });
    assertOneLine(dir, /tensor model\.layers\.3\.input_layernorm\.weight is missing/);
  });

  test('an unknown architecture names itself, the config file and the supported list', () => {
    const dir = variant('arch', (c) => {
      c.architectures = ['FalconForCausalLM'];
    });
    assertOneLine(
      dir,
      /config\.json: architecture "FalconForCausalLM" is not supported \(supported: LlamaForCausalLM.*GPT2LMHeadModel\)/,
    );
  });

  test('an architecture pagoda does not run is refused by name, the supported ones listed', () => {
    const dir = variant('deepseek-v2', (c) => {
      c.architectures = ['DeepseekV2ForCausalLM'];
    });
    assertOneLine(
      dir,
      /architecture "DeepseekV2ForCausalLM" is not supported \(supported: .*\bPhi3ForCausalLM\b.*\bPhiForCausalLM\b.*\)$/,
    );
  });

  test("Phi-2's GELU is read from hidden_act: another activation is one line naming it", () => {
    const dir = variant('phi2', (c) => {
      c.architectures = ['PhiForCausalLM'];
    });
    assertOneLine(dir, /hidden_act "silu" is not supported for PhiForCausalLM \(expected one of gelu_new, /);
  });

  test("StableLM 2 12B's per-head q/k norms and parallel residual are each refused in one line", () => {
    for (const key of ['qk_layernorm', 'use_parallel_residual']) {
      const dir = variant(`stablelm-${key}`, (c) => {
        c.architectures = ['StableLmForCausalLM'];
        c[key] = true;
      });
      assertOneLine(dir, new RegExp(`${key} = true is not supported for StableLmForCausalLM`));
    }
  });

  test("GPTBigCode without multi-query (each head's q, k and v interleaved) is refused in one line", () => {
    const dir = variant('gpt-bigcode-mha', (c) => {
      c.architectures = ['GPTBigCodeForCausalLM'];
      c.model_type = 'gpt_bigcode';
      c.multi_query = false;
    });
    assertOneLine(dir, /multi_query = false is not supported for GPTBigCodeForCausalLM/);
  });

  test('LongRoPE factor lists that do not fit the rotary dims are one line naming the list and the count', () => {
    const dir = variant('longrope', (c) => {
      c.original_max_position_embeddings = 64;
      c.rope_scaling = { type: 'longrope', short_factor: [1, 1], long_factor: [1, 2, 3, 4, 5, 6, 7, 8] };
    });
    // head size 16: 8 frequencies; the default max model len exceeds 64, so the long list is read first
    assert.equal(loadModel(dir, new CpuBackend()).kvShape.numLayers, 3);
    assert.throws(
      () => loadModel(dir, new CpuBackend(), { maxModelLen: 64 }),
      /^UserError: config\.json: rope scaling "longrope" needs "short_factor" as 8 numbers \(rotary dim 16 \/ 2\), found 2 entries$/,
    );
  });

  test('without "architectures" the model_type picks the architecture', () => {
    const dir = variant('by-type', (c) => {
      delete c.architectures;
    });
    assert.equal(loadModel(dir, new CpuBackend()).kvShape.numLayers, 3);
  });

  test('an unsupported rope scaling type is named', () => {
    const dir = variant('rope', (c) => {
      c.rope_parameters = { rope_type: 'deepseek_yarn', rope_theta: 10000 };
    });
    assertOneLine(dir, /rope scaling type "deepseek_yarn" is not supported/);
  });
});
