import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadPoolingEngine } from '../../src/engine/pooling-load.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { QWEN3_RERANK_TEMPLATE } from '../../src/loader/qwen3-reranker.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { FolderVariants } from '../helpers/bert-variants.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';
import { writeTinyNomicBert } from '../helpers/nomic-bert-gguf.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';
import { qwen3RerankerFiles } from '../helpers/qwen3-reranker-folder.ts';
import { writeQwen3Reranker } from '../helpers/qwen3-reranker-gguf.ts';

const skip = gpuSkip();
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-cuda-gguf-pooling-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Golden {
  input_ids: number[][];
  embeddings: number[][];
}

/** The golden inputs' embeddings from a GGUF file served on CUDA (runner thread, the start-up path a server takes). */
async function embedOnCuda(path: string, ids: number[][], dtype: string): Promise<Float32Array[]> {
  const loaded = await loadPoolingEngine(path, { device: 'cuda', dtype, log: () => {} });
  try {
    assert.equal(loaded.backend, 'cuda');
    return (await Promise.all(ids.map((tokenIds) => loaded.engine.pool([{ tokenIds }])))).map(([row]) => row!);
  } finally {
    await loaded.engine.shutdown();
  }
}

for (const name of ['tiny-bert', 'tiny-qwen3-embed']) {
  const fixture = modelFixture(name);
  describe(`CUDA GGUF embeddings: ${name}`, { skip: skip || fixture.skip }, () => {
    const golden = (): Golden => JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8'));

    test('F32 file in float32: every embedding within 1e-4 of sentence-transformers', async () => {
      const out = join(tmp, `${name}-f32.gguf`);
      convertToGguf(fixture.path, out, 'f32');
      const g = golden();
      const got = await embedOnCuda(out, g.input_ids, 'float32');
      for (const [i, want] of g.embeddings.entries()) assert.ok(maxAbsDiff(got[i]!, want) < 1e-4, `sentence ${i}`);
    });

    // The CPU test's bound for Q8_0 (cosine distance < 2e-3: measured at most 8e-4); float32 adds nothing to it.
    test('Q8_0 file in float32: dequantized at load, within the CPU test’s Q8_0 bound', async () => {
      const out = join(tmp, `${name}-q8_0.gguf`);
      quantizeToGguf(fixture.path, out, parseQuantization('q8_0', '--type'));
      const g = golden();
      const got = await embedOnCuda(out, g.input_ids, 'float32');
      for (const [i, want] of g.embeddings.entries()) {
        const cosine = got[i]!.reduce((a, v, j) => a + v * want[j]!, 0);
        assert.ok(1 - cosine < 2e-3, `sentence ${i}: cosine ${cosine}`);
      }
    });
  });
}

// BERT (pooler as cls) and XLM-R (RoBERTa's head; the position table without its padding rows) as llama.cpp writes them.
for (const name of ['tiny-bert-reranker', 'tiny-xlmr-reranker']) {
  const reranker = modelFixture(name);
  test(`CUDA GGUF reranker: ${name} as F32 GGUF scores the golden pairs in float32`, {
    skip: skip || reranker.skip,
  }, async () => {
    const out = join(tmp, `${name}-f32.gguf`);
    convertToGguf(reranker.path, out, 'f32');
    const g = JSON.parse(readFileSync(join(reranker.path, 'golden.json'), 'utf8')) as {
      query: string;
      pairs: { document: string; input_ids: number[]; score: number }[];
    };
    const tok = loadTokenizer(out);
    const loaded = await loadPoolingEngine(out, { device: 'cuda', dtype: 'float32', log: () => {} });
    try {
      assert.equal(loaded.task, 'score');
      const inputs = g.pairs.map((p) => {
        const pair = tok.encodePair!(g.query, p.document);
        assert.deepEqual(pair.ids, p.input_ids);
        return { tokenIds: pair.ids, tokenTypeIds: pair.typeIds };
      });
      const rows = await loaded.engine.pool(inputs);
      for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(rows[i]![0]! - p.score) < 1e-5, `pair ${i}`);
    } finally {
      await loaded.engine.shutdown();
    }
  });
}

/** The CPU's float32 embeddings of the token sequences, one step (the reference the device is held to). */
function embedOnCpu(path: string, ids: number[][]): Float32Array[] {
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  const out = model.backend.toHost(
    model.forward(model.backend.beginStep(buildPoolingBatch(ids.map((tokenIds) => ({ tokenIds }))))),
  );
  return ids.map((_, i) => out.slice(i * model.outputSize, (i + 1) * model.outputSize));
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
}

// nomic-bert (nomic-embed-text's architecture) as a tiny random file, with and without attention biases: rotary q/k,
// the SiLU gate product and LayerNorm on the device against the CPU's float32 forward of the same file (which the
// CPU test holds to llama.cpp). A CPU emulation of bf16 storage puts this model's cosine near 0.99998.
const bert = modelFixture('tiny-bert');
for (const attentionBias of [false, true]) {
  describe(`CUDA GGUF embeddings: tiny nomic-bert${attentionBias ? ' with attention biases' : ''}`, {
    skip: skip || bert.skip,
  }, () => {
    const path = join(tmp, `tiny-nomic-bert-${attentionBias}.gguf`);
    const texts = ['the quick brown fox jumps over the lazy dog', 'hello world, this is a test.', 'search_query: fox'];
    let ids: number[][] = [];
    let want: Float32Array[] = [];
    before(() => {
      writeTinyNomicBert(path, bert.path, { attentionBias });
      const tok = loadTokenizer(path);
      ids = texts.map((t) => tok.encode(t));
      want = embedOnCpu(path, ids);
    });

    test('float32: every embedding within 1e-4 of the CPU', async () => {
      const got = await embedOnCuda(path, ids, 'float32');
      for (const [i, row] of want.entries()) assert.ok(maxAbsDiff(got[i]!, row) < 1e-4, `text ${i}`);
    });

    test('bfloat16: cosine with the CPU float32 >= 0.9999', async () => {
      const got = await embedOnCuda(path, ids, 'bfloat16');
      for (const [i, row] of want.entries()) {
        const cos = cosine(got[i]!, row);
        console.log(`nomic-bert (attention bias ${attentionBias}) bf16 text ${i}: cosine ${cos.toFixed(6)}`);
        assert.ok(cos >= 0.9999, `text ${i}: cosine ${cos}`);
      }
    });
  });
}

// A Qwen3-Reranker as llama.cpp's converter writes one (qwen3, rank pooling, cls.output of the LM head's "yes" and
// "no" rows, the rerank template), and as a Hugging Face folder (the LM head's rows read at load): the decoder's last
// token through the two rows on the device, one batched step, against the CPU's float32 forward of the same model
// (which the CPU tests hold to llama.cpp and to transformers).
const qwen3 = modelFixture('tiny-qwen3');
test('CUDA reranker: a tiny Qwen3-Reranker, GGUF and folder, in float32 scores as the CPU does', {
  skip: skip || qwen3.skip,
}, async () => {
  const generating = join(tmp, 'tiny-qwen3-f32.gguf');
  convertToGguf(qwen3.path, generating, 'f32');
  const words = loadTokenizer(generating);
  const first = (t: string) => words.encode(t, { addSpecialTokens: false })[0]!;
  const file = join(tmp, 'tiny-qwen3-reranker.gguf');
  writeQwen3Reranker(generating, file, { template: QWEN3_RERANK_TEMPLATE, rows: [first('yes'), first('no')] });
  const variants = new FolderVariants(qwen3.path);
  const folder = variants.withFiles(qwen3RerankerFiles(qwen3.path));
  const docs = ['paged attention stores the kv cache in blocks', 'the quick brown fox', 'kv cache blocks are paged'];
  const ids = docs.map((d) =>
    words.encode(QWEN3_RERANK_TEMPLATE.replace('{query}', 'where is the kv cache').replace('{document}', d), {
      addSpecialTokens: false,
    }),
  );
  try {
    for (const path of [file, folder]) {
      const want = embedOnCpu(path, ids).map(([z]) => 1 / (1 + Math.exp(-z!)));
      const loaded = await loadPoolingEngine(path, { device: 'cuda', dtype: 'float32', log: () => {} });
      try {
        assert.equal(loaded.task, 'score');
        const rows = await loaded.engine.pool(ids.map((tokenIds) => ({ tokenIds })));
        for (const [i, p] of want.entries()) {
          assert.ok(Math.abs(rows[i]![0]! - p) < 1e-5, `${path} document ${i}: CUDA ${rows[i]![0]}, CPU ${p}`);
        }
      } finally {
        await loaded.engine.shutdown();
      }
    }
  } finally {
    variants.cleanup();
  }
});
