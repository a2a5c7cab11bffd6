import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { PoolingEngine } from '../../src/engine/pooling-engine.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { PoolingRunner } from '../../src/runner/pooling-runner.ts';
import { modelFixture } from '../helpers/fixtures.ts';

interface Golden {
  query: string;
  pairs: { document: string; input_ids: number[]; token_type_ids?: number[]; logit: number; score: number }[];
}

// Generated on a machine with transformers and sentence-transformers by test/fixtures/generate-cross-encoder.py,
// which writes test/fixtures/models/tiny-bert-reranker and tiny-xlmr-reranker.
const MISSING =
  'fixture not generated yet: run `python3 test/fixtures/generate-cross-encoder.py` where torch, transformers and ' +
  'sentence-transformers are installed (it writes test/fixtures/models/tiny-bert-reranker and tiny-xlmr-reranker)';

for (const name of ['tiny-bert-reranker', 'tiny-xlmr-reranker']) {
  const fixture = modelFixture(name);
  describe(`reranker golden ${name}`, { skip: fixture.skip && MISSING }, () => {
    const golden = (): Golden => JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8'));

    test("the pair template gives transformers' ids (and token types where it returns them)", () => {
      const g = golden();
      const tok = loadTokenizer(fixture.path);
      for (const p of g.pairs) {
        const got = tok.encodePair!(g.query, p.document);
        assert.deepEqual(got.ids, p.input_ids);
        if (p.token_type_ids) assert.deepEqual(got.typeIds, p.token_type_ids);
      }
    });

    test("CrossEncoder's scores through the pooling engine: logits within 1e-4, scores within 1e-5", async () => {
      const g = golden();
      const { model } = loadPoolingModel(fixture.path, new CpuBackend({ threads: 1 }));
      assert.equal(model.task, 'score');
      const inputs = g.pairs.map((p) => ({ tokenIds: p.input_ids, tokenTypeIds: p.token_type_ids }));
      const logits = model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
      for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(logits[i]! - p.logit) < 1e-4, `pair ${i}`);
      const engine = new PoolingEngine({
        runner: new PoolingRunner(model),
        tokenizer: loadTokenizer(fixture.path),
        maxModelLen: 512,
        maxNumBatchedTokens: 512,
        maxNumSeqs: 64,
      });
      const rows = await engine.pool(inputs);
      for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(rows[i]![0]! - p.score) < 1e-5, `pair ${i}`);
      await engine.shutdown();
    });
  });
}
