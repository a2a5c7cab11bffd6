import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, llamaCppUnitEmbeddings } from '../helpers/llama-cpp.ts';
import { writeTinyNomicBert } from '../helpers/nomic-bert-gguf.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pagoda-gguf-nomic-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const llama = cpuLlamaForTests();
const bert = modelFixture('tiny-bert');
const TEXTS = ['the quick brown fox jumps over the lazy dog', 'hello world, this is a test.', 'search_query: fox'];

/** pagoda's embedding of each token sequence, all in one step (CPU, float32). */
function embedIds(path: string, ids: number[][]): number[][] {
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'embed');
  const out = model.backend.toHost(
    model.forward(model.backend.beginStep(buildPoolingBatch(ids.map((tokenIds) => ({ tokenIds }))))),
  );
  const n = model.outputSize;
  return ids.map((_, i) => [...out.subarray(i * n, (i + 1) * n)]);
}

for (const attentionBias of [false, true]) {
  describe(`nomic-bert GGUF (tiny, random${attentionBias ? ', attention biases' : ''})`, { skip: bert.skip }, () => {
    const path = join(tmp, `tiny-nomic-bert-${attentionBias}.gguf`);
    const ids = () => {
      const tok = loadTokenizer(path);
      return TEXTS.map((t) => tok.encode(t));
    };
    before(() => writeTinyNomicBert(path, bert.path, { attentionBias }));

    // The BERT GGUF tests' bound (their GELU runs from llama.cpp's F16 table: ~5e-4 off). This model has no GELU and
    // lands within ~1e-4 of llama.cpp (measured 1.1e-4 at most); leaving out the rotary step, pairing as GPT-J, a
    // swapped gate/up or a dropped attention bias each moves it by 0.04 to 0.17.
    test('llama.cpp (node-llama-cpp) loads the file and embeds as pagoda does', async () => {
      const ours = embedIds(path, ids());
      const theirs = await llamaCppUnitEmbeddings(llama(), path, TEXTS);
      for (const [i, text] of TEXTS.entries()) {
        const diff = maxAbsDiff(ours[i]!, theirs[i]!);
        assert.ok(diff < 2e-3, `${text}: max abs diff ${diff}`);
      }
    });

    test('unit length, deterministic, the same alone as in a batch, and order-sensitive (rotary positions)', () => {
      const all = ids();
      const batched = embedIds(path, all);
      for (const row of batched) assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
      assert.deepEqual(embedIds(path, all), batched);
      for (const [i, seq] of all.entries()) assert.ok(maxAbsDiff(embedIds(path, [seq])[0]!, batched[i]!) < 1e-6);
      // Mean pooling over an encoder without positions would give a reversed sequence the same embedding.
      const reversed = embedIds(path, [[...all[0]!].reverse()])[0]!;
      assert.ok(maxAbsDiff(reversed, batched[0]!) > 1e-2);
    });
  });
}
