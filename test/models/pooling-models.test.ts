import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { parseModelConfig } from '../../src/loader/hf-config.ts';
import { modelTask } from '../../src/loader/model-task.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import type { PoolingModel } from '../../src/models/pooling-model.ts';
import { buildPoolingBatch, type PoolingInput } from '../../src/runner/pooling-batch.ts';
import { UserError } from '../../src/util/errors.ts';
import {
  crossEncoderLogit,
  crossEncoderVariant,
  FolderVariants,
  readTensors,
  type Tensors,
} from '../helpers/bert-variants.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

const bert = modelFixture('tiny-bert');
const INPUTS: PoolingInput[] = [
  { tokenIds: [2, 375, 659, 657, 3] },
  { tokenIds: [2, 36, 3, 51, 523, 336, 3], tokenTypeIds: [0, 0, 0, 1, 1, 1, 1] },
  { tokenIds: [2, 3] },
];

function run(model: PoolingModel, inputs = INPUTS): Float32Array {
  return model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
}

test('the task of a folder: classifiers score, bare encoders and sentence-transformers decoders embed', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pagoda-task-'));
  try {
    const task = (raw: Record<string, unknown>, modulesJson = false) => {
      rmSync(join(tmp, 'modules.json'), { force: true });
      if (modulesJson) writeFileSync(join(tmp, 'modules.json'), '[]');
      return modelTask(
        tmp,
        parseModelConfig({ hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, vocab_size: 9, ...raw }),
      );
    };
    assert.equal(task({ architectures: ['BertModel'] }), 'embed');
    assert.equal(task({ model_type: 'bert' }), 'embed');
    assert.equal(task({ architectures: ['XLMRobertaModel'] }), 'embed');
    assert.equal(task({ architectures: ['Qwen3Model'] }), 'embed');
    assert.equal(task({ architectures: ['BertForSequenceClassification'] }), 'score');
    assert.equal(task({ architectures: ['XLMRobertaForSequenceClassification'] }), 'score');
    assert.equal(task({ architectures: ['Qwen3ForCausalLM'] }), 'generate');
    assert.equal(task({ architectures: ['Qwen3ForCausalLM'] }, true), 'embed');
    assert.equal(task({ architectures: ['GPT2LMHeadModel'] }, true), 'generate');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

describe('BERT-family variants built from tiny-bert', { skip: bert.skip }, () => {
  const variants = new FolderVariants(bert.path);
  after(() => variants.cleanup());
  const config = () => JSON.parse(JSON.stringify(readConfig(bert.path))) as Record<string, unknown>;
  const renamed = (t: Tensors, prefix: string): Tensors => new Map([...t].map(([n, v]) => [`${prefix}${n}`, v]));

  test('XLM-RoBERTa (positions from padding_idx + 1, "roberta." names) embeds as the same BERT', () => {
    const base = loadPoolingModel(bert.path, new CpuBackend({ threads: 1 })).model;
    const t = readTensors(bert.path);
    const pos = t.get('embeddings.position_embeddings.weight')!;
    // padding_idx 1: rows 0 and 1 are never read; row 2 is position 0.
    const shifted = new Float32Array(pos.data.length + 2 * 64).fill(99);
    shifted.set(pos.data, 2 * 64);
    t.set('embeddings.position_embeddings.weight', { shape: [514, 64], data: shifted });
    const cfg = { ...config(), architectures: ['XLMRobertaModel'], model_type: 'xlm-roberta', pad_token_id: 1 };
    const dir = variants.make({ ...cfg, max_position_embeddings: 514 }, renamed(t, 'roberta.'));
    const { model } = loadPoolingModel(dir, new CpuBackend({ threads: 1 }));
    assert.equal(model.encoder.maxPositions, 512);
    assert.ok(maxAbsDiff(run(model), run(base)) < 1e-6);
  });

  for (const roberta of [false, true]) {
    test(`a ${roberta ? 'RoBERTa' : 'BERT'} cross-encoder scores CLS through dense, tanh and its one-logit classifier`, () => {
      const v = crossEncoderVariant(variants, bert.path, roberta);
      const { model } = loadPoolingModel(v.dir, new CpuBackend({ threads: 1 }));
      assert.equal(model.task, 'score');
      const base = loadPoolingModel(bert.path, new CpuBackend({ threads: 1 })).model.encoder;
      const step = base.backend.beginStep(buildPoolingBatch(INPUTS));
      const cls = base.backend.toHost(base.backend.pool(base.hiddenStates(step), step, 'cls'));
      const want = INPUTS.map((_, s) => crossEncoderLogit(v, cls.subarray(s * 64, (s + 1) * 64)));
      assert.ok(maxAbsDiff(run(model), want) < 1e-5, `${run(model)} vs ${want}`);
    });
  }

  test('refusals name the file and the value: two labels, an unknown activation, a text generator', () => {
    const t = readTensors(bert.path);
    const fails = (dir: string, pattern: RegExp) =>
      assert.throws(
        () => loadPoolingModel(dir, new CpuBackend({ threads: 1 })),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    fails(
      variants.make({ ...config(), architectures: ['BertForSequenceClassification'], num_labels: 2 }, t),
      /2 labels; a reranker \(cross-encoder\) has one/,
    );
    fails(variants.make({ ...config(), hidden_act: 'relu' }, t), /hidden_act "relu" is not supported/);
    fails(
      variants.make({ ...config(), architectures: ['LlamaForCausalLM'] }, t, ['modules.json']),
      /generates text; it is not an embedding or reranking model/,
    );
  });
});

function readConfig(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
}
