import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModelConfig, type ModelConfig, parseModelConfig } from '../../src/loader/hf-config.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { UserError } from '../../src/util/errors.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { tinyNomicConfig, writeTinyNomicBertFolder } from '../helpers/nomic-bert-folder.ts';
import { writeTinyNomicBert } from '../helpers/nomic-bert-gguf.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pagoda-hf-nomic-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const bert = modelFixture('tiny-bert');
const TEXTS = ['the quick brown fox jumps over the lazy dog', 'hello world, this is a test.', 'search_query: fox'];

/** The embeddings of each token sequence, all in one step (CPU, float32), and the encoder's position limit. */
function embedIds(path: string, ids: number[][]): { rows: number[][]; maxPositions: number } {
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'embed');
  const out = model.backend.toHost(
    model.forward(model.backend.beginStep(buildPoolingBatch(ids.map((tokenIds) => ({ tokenIds }))))),
  );
  const n = model.outputSize;
  return { rows: ids.map((_, i) => [...out.subarray(i * n, (i + 1) * n)]), maxPositions: model.encoder.maxPositions };
}

/**
 * A ModelConfig without the file's own keys and the token ids (a BERT vocabulary's GGUF names [CLS] / [SEP]), its
 * epsilon at the float32 a GGUF stores.
 */
function comparable(c: ModelConfig): Partial<ModelConfig> {
  const { raw: _, bosTokenId: __, eosTokenIds: ___, ...rest } = c;
  return { ...rest, normEps: Math.fround(c.normEps) };
}

for (const attentionBias of [false, true]) {
  describe(`nomic-bert HF folder against the same weights' GGUF${attentionBias ? ' (attention biases)' : ''}`, {
    skip: bert.skip,
  }, () => {
    const gguf = join(tmp, `tiny-nomic-${attentionBias}.gguf`);
    const folder = join(tmp, `tiny-nomic-${attentionBias}`);
    before(() => {
      writeTinyNomicBert(gguf, bert.path, { attentionBias });
      writeTinyNomicBertFolder(folder, bert.path, { attentionBias });
    });

    test('config.json (NomicBertConfig keys) gives the GGUF metadata’s model config', () => {
      const hf = loadModelConfig(folder);
      assert.deepEqual(comparable(hf), comparable(loadModelConfig(gguf)));
      // n_positions 8192 is the rotary extension; the model is trained for max_trained_positions.
      assert.equal(hf.maxPositionEmbeddings, 128);
      assert.equal(hf.ropeTheta, 1000);
    });

    test('the same tokens and the same embeddings (mean pooling, normalized) as the GGUF file', () => {
      const fromFolder = TEXTS.map((t) => loadTokenizer(folder).encode(t));
      assert.deepEqual(
        fromFolder,
        TEXTS.map((t) => loadTokenizer(gguf).encode(t)),
      );
      const ours = embedIds(folder, fromFolder);
      const theirs = embedIds(gguf, fromFolder);
      assert.equal(ours.maxPositions, theirs.maxPositions);
      // The same float32 weights through the same forward: equal to the bit (the epsilons' float32 rounding apart).
      assert.deepEqual(ours.rows, theirs.rows);
      for (const row of ours.rows) assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
    });
  });
}

describe('nomic-bert HF folder: sentence-transformers files and refused settings', { skip: bert.skip }, () => {
  const folder = join(tmp, 'st');
  before(() => writeTinyNomicBertFolder(folder, bert.path));

  test('modules.json (2–5 style) gives mean pooling, Normalize and the task prefixes as prompts', () => {
    const { sentenceTransformers: st } = loadPoolingModel(folder, new CpuBackend({ threads: 1 }), { dummy: true });
    assert.equal(st?.pooling, 'mean');
    assert.equal(st?.normalize, true);
    assert.equal(st?.prompts.search_query, 'search_query: ');
    assert.equal(st?.prompts.search_document, 'search_document: ');
  });

  test('positions: the smaller of n_positions (or max_position_embeddings) and max_trained_positions (2048 unset)', () => {
    const { n_positions: _, max_trained_positions: __, ...rest } = tinyNomicConfig();
    const positions = (keys: Record<string, unknown>) => parseModelConfig({ ...rest, ...keys }).maxPositionEmbeddings;
    assert.equal(positions({ n_positions: 8192 }), 2048);
    assert.equal(positions({ n_positions: 8192, max_trained_positions: 512 }), 512);
    assert.equal(positions({ max_position_embeddings: 300 }), 300);
    assert.equal(positions({}), 1024);
  });

  const refused: [what: string, field: string, patch: Record<string, unknown>][] = [
    ['rotary_emb_fraction 0.5', 'rotary_emb_fraction', { rotary_emb_fraction: 0.5 }],
    ['prenorm true', 'prenorm', { prenorm: true }],
    ['rotary_emb_interleaved true', 'rotary_emb_interleaved', { rotary_emb_interleaved: true }],
    ['activation_function gelu', 'activation_function', { activation_function: 'gelu' }],
    ['mlp_fc1_bias true', 'mlp_fc1_bias', { mlp_fc1_bias: true }],
    ['nomic-embed-text-v2-moe', 'moe_every_n_layers', { moe_every_n_layers: 2, num_experts: 8 }],
    // NomicBertConfig's default is 0 (a learned position table): a file without the key does not rotate.
    ['no rotary_emb_fraction', 'rotary_emb_fraction', { rotary_emb_fraction: undefined }],
  ];
  for (const [i, [what, field, patch]] of refused.entries()) {
    test(`${what} is refused in one line naming ${field}`, () => {
      const dir = join(tmp, `bad-${i}`);
      writeTinyNomicBertFolder(dir, bert.path, { config: { ...tinyNomicConfig(), ...patch } });
      assert.throws(
        () => loadPoolingModel(dir, new CpuBackend({ threads: 1 })),
        (err: Error) =>
          err instanceof UserError &&
          err.message.startsWith(join(dir, 'config.json')) &&
          err.message.includes(`${field} `) &&
          !err.message.includes('\n'),
      );
    });
  }
});
