import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { ggufHeader } from '../../src/loader/gguf/files.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, llamaCppUnitEmbeddings } from '../helpers/llama-cpp.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

interface Golden {
  sentences: string[];
  input_ids: number[][];
  embeddings: number[][];
}

const tmp = mkdtempSync(join(tmpdir(), 'pagoda-gguf-pooling-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const llama = cpuLlamaForTests();

/** Each sentence's embedding from the model at `path` (its own tokenizer, checked against the golden ids), on the CPU. */
function embed(path: string, g: Pick<Golden, 'sentences'> & Partial<Golden>): number[][] {
  const tok = loadTokenizer(path);
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'embed');
  const inputs = g.sentences.map((s) => ({ tokenIds: tok.encode(s) }));
  if (g.input_ids) {
    assert.deepEqual(
      inputs.map((i) => i.tokenIds),
      g.input_ids,
    );
  }
  const out = model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
  const n = model.outputSize;
  return g.sentences.map((_, i) => [...out.subarray(i * n, (i + 1) * n)]);
}

for (const name of ['tiny-bert', 'tiny-qwen3-embed']) {
  const fixture = modelFixture(name);
  describe(`${name} as GGUF`, { skip: fixture.skip }, () => {
    const golden = () => JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as Golden;
    test('F32: the tokenizer rebuilt from the file gives the golden ids, the embeddings match within 1e-4', () => {
      const out = join(tmp, `${name}-f32.gguf`);
      convertToGguf(fixture.path, out, 'f32');
      const g = golden();
      const got = embed(out, g);
      for (const [i, row] of got.entries()) assert.ok(maxAbsDiff(row, g.embeddings[i]!) < 1e-4, `sentence ${i}`);
    });

    // llama.cpp keeps K and V in F16 (and runs BERT's GELU from an F16 table): its unit embeddings differ from the
    // F32 ones by ~5e-4 here; a tokenizer or pooling mismatch would move them by orders of magnitude more.
    test('llama.cpp (node-llama-cpp) loads the written file and embeds as pagoda does', async () => {
      const out = join(tmp, `${name}-f32.gguf`);
      const texts = ['the quick brown fox jumps over the lazy dog', 'hello world, this is a test.'];
      const ours = embed(out, { sentences: texts });
      const theirs = await llamaCppUnitEmbeddings(llama(), out, texts);
      for (const [i, text] of texts.entries()) assert.ok(maxAbsDiff(ours[i]!, theirs[i]!) < 2e-3, text);
    });

    // Q8_0 rounds each weight to 1/127 of its 32-weight block's largest: ~0.4% at most. Through these tiny models
    // that moves the unit embeddings by a cosine distance of at most 8e-4 (measured over the goldens); a misplaced
    // or misread tensor moves them by orders of magnitude more.
    test('Q8_0: dequantized at load, each embedding within a cosine distance of 2e-3 of the golden', () => {
      const out = join(tmp, `${name}-q8_0.gguf`);
      const report = quantizeToGguf(fixture.path, out, parseQuantization('q8_0', '--type'));
      assert.ok(report.types.q8_0! >= 4, JSON.stringify(report.types));
      const g = golden();
      for (const [i, row] of embed(out, g).entries()) {
        const cosine = row.reduce((a, v, j) => a + v * g.embeddings[i]![j]!, 0);
        assert.ok(1 - cosine < 2e-3, `sentence ${i}: cosine ${cosine}`);
      }
    });
  });
}

const reranker = modelFixture('tiny-bert-reranker');
test('tiny-bert-reranker as F32 GGUF (rank: pooler as cls, classifier as cls.output) gives the golden pairs and logits', {
  skip: reranker.skip,
}, () => {
  const out = join(tmp, 'tiny-bert-reranker-f32.gguf');
  convertToGguf(reranker.path, out, 'f32');
  const header = ggufHeader(out);
  assert.equal(header.value('bert.pooling_type'), 4);
  assert.ok(header.tensors.has('cls.weight') && header.tensors.has('cls.output.bias'));
  const g = JSON.parse(readFileSync(join(reranker.path, 'golden.json'), 'utf8')) as {
    query: string;
    pairs: { document: string; input_ids: number[]; token_type_ids: number[]; logit: number }[];
  };
  const tok = loadTokenizer(out);
  const inputs = g.pairs.map((p) => {
    const pair = tok.encodePair!(g.query, p.document);
    assert.deepEqual([pair.ids, pair.typeIds], [p.input_ids, p.token_type_ids]);
    return { tokenIds: pair.ids, tokenTypeIds: pair.typeIds };
  });
  const { model } = loadPoolingModel(out, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'score');
  const logits = model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
  for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(logits[i]! - p.logit) < 1e-4, `pair ${i}`);
});

test('a GGUF that neither embeds nor ranks is refused in one line', { skip: reranker.skip }, () => {
  const llamaFixture = modelFixture('tiny-llama');
  const out = join(tmp, 'tiny-llama.gguf');
  convertToGguf(llamaFixture.path, out, 'f32');
  assert.throws(
    () => loadPoolingModel(out, new CpuBackend({ threads: 1 })),
    /tiny-llama\.gguf: GGUF architecture "llama" without a pooling type generates text; it is not an embedding or reranking model/,
  );
});
