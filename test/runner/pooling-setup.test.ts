import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { preparePoolingModel } from '../../src/runner/pooling-setup.ts';
import { UserError } from '../../src/util/errors.ts';
import { crossEncoderVariant, FolderVariants } from '../helpers/bert-variants.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const fixtures = join(projectRoot, 'test/fixtures/models');
const variants = new FolderVariants(join(fixtures, 'tiny-bert'));
after(() => variants.cleanup());
const cpu = () => ({ backend: new CpuBackend({ threads: 1 }), log: () => {} });

test('the longest input: max_seq_length, else the tokenizer limit; --max-model-len lowers it, never past the positions', async () => {
  const qwen = await preparePoolingModel(join(fixtures, 'tiny-qwen3-embed'), cpu());
  assert.equal(qwen.task, 'embed');
  assert.equal(qwen.maxModelLen, 512); // sentence_bert_config.json
  const bert = await preparePoolingModel(join(fixtures, 'tiny-bert'), cpu());
  assert.equal(bert.maxModelLen, 512); // tokenizer_config.json model_max_length (6.x files carry no max_seq_length)
  assert.equal(
    (await preparePoolingModel(join(fixtures, 'tiny-bert'), { ...cpu(), maxModelLen: 128 })).maxModelLen,
    128,
  );
  assert.equal(
    (await preparePoolingModel(join(fixtures, 'tiny-bert'), { ...cpu(), maxModelLen: 4096 })).maxModelLen,
    512,
  );
  const short = variants.withFiles({ 'sentence_bert_config.json': { max_seq_length: 64 } });
  assert.equal((await preparePoolingModel(short, cpu())).maxModelLen, 64);
  // The token budget holds the longest input (inputs are never split).
  assert.equal(
    (await preparePoolingModel(join(fixtures, 'tiny-bert'), { ...cpu(), maxNumBatchedTokens: 100 }))
      .maxNumBatchedTokens,
    512,
  );
});

test('a reranker loads with its task; pagoda run refuses embedding and reranking models in one line', async () => {
  const reranker = crossEncoderVariant(variants, join(fixtures, 'tiny-bert'), false);
  assert.equal((await preparePoolingModel(reranker.dir, cpu())).task, 'score');
  for (const [dir, pattern] of [
    [
      join(fixtures, 'tiny-bert'),
      /an embedding model does not generate text \(serve it and use \/v1\/embeddings or \/api\/embed\)/,
    ],
    [reranker.dir, /a reranking model does not generate text \(serve it and use \/v1\/rerank\)/],
  ] as const) {
    assert.throws(
      () => prepareModel(dir, cpu()),
      (e: unknown) => e instanceof UserError && pattern.test(e.message),
    );
  }
});
