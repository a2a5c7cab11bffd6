import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

/** Agreement with sentence-transformers in float32 (goldens rounded to 6 decimals). */
const TOL = 1e-4;

interface Golden {
  sentences: string[];
  input_ids: number[][];
  embeddings: number[][];
}

for (const name of ['tiny-bert', 'tiny-qwen3-embed']) {
  const fixture = modelFixture(name);
  describe(`embedding golden ${name}`, { skip: fixture.skip }, () => {
    const dir = fixture.path;
    const golden = (): Golden => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
    const embed = (ids: number[][]) => {
      const { model } = loadPoolingModel(dir, new CpuBackend({ threads: 1 }));
      const step = model.backend.beginStep(buildPoolingBatch(ids.map((tokenIds) => ({ tokenIds }))));
      const out = model.backend.toHost(model.forward(step));
      return ids.map((_, i) => out.subarray(i * model.outputSize, (i + 1) * model.outputSize));
    };

    test('the tokenizer gives the golden ids', () => {
      const g = golden();
      const tok = loadTokenizer(dir);
      for (const [i, s] of g.sentences.entries()) assert.deepEqual(tok.encode(s), g.input_ids[i], `sentence ${i}`);
    });

    test('all sentences in one step match sentence-transformers', () => {
      const g = golden();
      embed(g.input_ids).forEach((e, i) => {
        const diff = maxAbsDiff(e, g.embeddings[i]!);
        assert.ok(diff < TOL, `sentence ${i}: embedding differs by ${diff}`);
      });
    });

    test('a sentence alone gives the same embedding as in a batch', () => {
      const g = golden();
      const batched = embed(g.input_ids);
      for (const [i, ids] of g.input_ids.entries()) {
        assert.ok(maxAbsDiff(embed([ids])[0]!, batched[i]!) < 1e-6, `sentence ${i}`);
      }
    });
  });
}
