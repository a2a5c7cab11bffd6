import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { ggufHeader } from '../../src/loader/gguf/files.ts';
import { QWEN3_RERANK_TEMPLATE } from '../../src/loader/qwen3-reranker.ts';
import { loadTokenizer, type TextTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, llamaCppLogits } from '../helpers/llama-cpp.ts';
import { writeQwen3Reranker } from '../helpers/qwen3-reranker-gguf.ts';
import { request, startTestServer } from '../server/harness.ts';

const fixture = modelFixture('tiny-qwen3');
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-gguf-qwen3-rerank-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const llama = cpuLlamaForTests();

/**
 * The converter's template with its placeholders right after ':' (no space): node-llama-cpp's ranking context
 * tokenizes the template's pieces and the texts apart, llama.cpp's server the filled-in text whole; where a
 * placeholder sits on a pre-tokenizer boundary the two give the same ids (checked below), so the comparison is of the
 * model, not of where node-llama-cpp splits ("...: " + "what" is not "...:" + " what").
 */
const SPLIT_SAFE_TEMPLATE = QWEN3_RERANK_TEMPLATE.replace(': {query}', ':{query}').replace(
  ': {document}',
  ':{document}',
);

// Texts that start and end with letters or digits, so they meet the template's pieces at pre-tokenizer boundaries.
const QUERY = 'where does paged attention keep the kv cache';
const DOCUMENTS = [
  'paged attention stores the kv cache in fixed size blocks',
  'the quick brown fox jumps over the lazy dog',
  'flash attention tiles the softmax through shared memory',
  'kv cache blocks are paged like virtual memory',
  'cafe naive resume deja vu 123',
];

const fill = (template: string, query: string, doc: string) =>
  template.replace(/\{(query|document)\}/g, (_, name) => (name === 'query' ? query : doc));

const generating = join(tmp, 'tiny-qwen3-f32.gguf');
const reranker = join(tmp, 'tiny-qwen3-reranker.gguf');
let tok: TextTokenizer;
/** The LM head rows standing in for "yes" and "no": the fixture's tiny vocabulary has neither word. */
let yesNo: [number, number];

before(() => {
  if (fixture.skip) return;
  convertToGguf(fixture.path, generating, 'f32');
  tok = loadTokenizer(generating);
  yesNo = [tok.encode('yes', { addSpecialTokens: false })[0]!, tok.encode('no', { addSpecialTokens: false })[0]!];
  assert.notEqual(yesNo[0], yesNo[1]);
  writeQwen3Reranker(generating, reranker, { template: SPLIT_SAFE_TEMPLATE, rows: yesNo });
});

/** pagoda's relevance logits (yes - no) for token sequences, on the CPU in float32. */
function logits(path: string, seqs: number[][]): number[] {
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'score');
  assert.equal(model.outputSize, 1);
  return [
    ...model.backend.toHost(
      model.forward(model.backend.beginStep(buildPoolingBatch(seqs.map((tokenIds) => ({ tokenIds }))))),
    ),
  ];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const order = (scores: readonly number[]) =>
  scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0])
    .map(([, i]) => i);

describe('a Qwen3-Reranker GGUF (qwen3, rank pooling, cls.output of yes / no)', { skip: fixture.skip }, () => {
  const inputs = () =>
    DOCUMENTS.map((d) => tok.encode(fill(SPLIT_SAFE_TEMPLATE, QUERY, d), { addSpecialTokens: false }));

  test("the head against float64: (yes - no) · the last token's final-normed state", () => {
    const { model } = loadPoolingModel(reranker, new CpuBackend({ threads: 1 }));
    const b = model.backend;
    const seqs = inputs();
    const step = b.beginStep(buildPoolingBatch(seqs.map((tokenIds) => ({ tokenIds }))));
    const last = b.toHost(b.pool(model.encoder.hiddenStates(step), step, 'last'));
    const got = b.toHost(model.forward(b.beginStep(buildPoolingBatch(seqs.map((tokenIds) => ({ tokenIds }))))));
    const header = ggufHeader(reranker);
    const cls = toFloat32(header.readTensor('cls.output.weight'));
    header.close();
    const H = model.config.hiddenSize;
    for (let s = 0; s < seqs.length; s++) {
      let want = 0;
      for (let j = 0; j < H; j++) want += (cls[j]! - cls[H + j]!) * last[s * H + j]!;
      // Measured within 2e-7 (float32 products); the other row's sign or another token moves it by O(1).
      assert.ok(Math.abs(got[s]! - want) < 1e-5 * (1 + Math.abs(want)), `pair ${s}: ${got[s]} vs ${want}`);
    }
    // Not a constant: the documents' logits spread.
    assert.ok(Math.max(...got) - Math.min(...got) > 0.05, `${[...got]}`);
  });

  test("the same as the generating file's LM head under llama.cpp with an F32 KV cache: logit(yes) - logit(no)", async () => {
    const seqs = inputs();
    const ours = logits(reranker, seqs);
    const model = await llama().loadModel({ modelPath: generating });
    try {
      for (const [i, seq] of seqs.entries()) {
        const [row] = await llamaCppLogits(model, seq, seq.length - 1, tok.vocabSize);
        const theirs = row![yesNo[0]]! - row![yesNo[1]]!;
        // Measured: within 3e-6 (float32 sums in another order); a wrong row, pooling or norm moves it by O(1).
        assert.ok(Math.abs(ours[i]! - theirs) < 2e-5, `pair ${i}: pagoda ${ours[i]}, llama.cpp ${theirs}`);
      }
    } finally {
      await model.dispose();
    }
  });

  test('llama.cpp (node-llama-cpp) ranks the file as pagoda scores it, within its F16 KV cache, in the same order', async () => {
    const model = await llama().loadModel({ modelPath: reranker });
    const ctx = await model.createRankingContext({ contextSize: 256, threads: 1 });
    try {
      // The template's pieces and the texts, tokenized apart as node-llama-cpp does, give pagoda's whole-text ids.
      for (const [i, seq] of inputs().entries()) {
        const [before, between, after] = SPLIT_SAFE_TEMPLATE.split(/\{query\}|\{document\}/) as [
          string,
          string,
          string,
        ];
        const pieces = [before, QUERY, between, DOCUMENTS[i]!, after].flatMap((t) =>
          tok.encode(t, { addSpecialTokens: false }),
        );
        assert.deepEqual(pieces, seq, `pair ${i}: pieces`);
        assert.deepEqual(
          model.tokenize(fill(SPLIT_SAFE_TEMPLATE, QUERY, DOCUMENTS[i]!), true),
          seq,
          `pair ${i}: llama.cpp`,
        );
      }
      const ours = logits(reranker, inputs()).map(sigmoid);
      const theirs = await ctx.rankAll(QUERY, DOCUMENTS);
      // The ranking context keeps K and V in F16 (it takes no cache type): measured within 1e-4 of pagoda's float32
      // probabilities here, 50x less than the documents' closest gap (5e-3); yes and no swapped would give 1 - p.
      for (const [i, s] of theirs.entries()) {
        assert.ok(Math.abs(s - ours[i]!) < 5e-4, `pair ${i}: llama.cpp ${s}, pagoda ${ours[i]}`);
      }
      assert.deepEqual(order(theirs), order(ours));
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });

  test('refused in one line: no rerank template, a template without {document}, cls.output not two rows, a llama', () => {
    const cases: [string, Parameters<typeof writeQwen3Reranker>[2], RegExp][] = [
      [
        'none',
        { template: null, rows: [1, 2] },
        /needs tokenizer\.chat_template\.rerank with \{query\} and \{document\}.*this file has none$/,
      ],
      ['half', { template: '<Query>: {query}', rows: [1, 2] }, /this file has one without them$/],
      [
        'rows',
        { template: QWEN3_RERANK_TEMPLATE, rows: [1, 2, 3] },
        /needs cls\.output\.weight as 2 rows \("yes", "no"\) of 64; this file has \[3, 64\]$/,
      ],
    ];
    for (const [name, opts, message] of cases) {
      const out = join(tmp, `bad-${name}.gguf`);
      writeQwen3Reranker(generating, out, opts);
      assert.throws(
        () => loadPoolingModel(out, new CpuBackend({ threads: 1 })),
        (e: Error) => message.test(e.message) && !e.message.includes('\n'),
        name,
      );
    }
    // llama.cpp ranks other decoders from the first token without the softmax: not this head.
    const llamaFixture = modelFixture('tiny-llama');
    if (llamaFixture.skip) return;
    const [llamaGen, llamaRank] = [join(tmp, 'tiny-llama.gguf'), join(tmp, 'tiny-llama-rank.gguf')];
    convertToGguf(llamaFixture.path, llamaGen, 'f32');
    writeQwen3Reranker(llamaGen, llamaRank, { template: QWEN3_RERANK_TEMPLATE, rows: [1, 2] });
    assert.throws(
      () => loadPoolingModel(llamaRank, new CpuBackend({ threads: 1 })),
      /tiny-llama-rank\.gguf: a reranking GGUF of a llama decoder is not supported \(decoder rerankers: qwen3\)$/,
    );
  });

  test("/v1/rerank fills the converter's template and tokenizes it whole, as llama.cpp's server does", async () => {
    const served = join(tmp, 'tiny-qwen3-reranker-converter-template.gguf');
    writeQwen3Reranker(generating, served, { template: QWEN3_RERANK_TEMPLATE, rows: yesNo });
    // A query naming a placeholder stays text: the template is filled in one pass.
    const query = `${QUERY} {document}`;
    const seqs = DOCUMENTS.map((d) => tok.encode(fill(QWEN3_RERANK_TEMPLATE, query, d), { addSpecialTokens: false }));
    const model = await llama().loadModel({ modelPath: served });
    try {
      for (const [i, seq] of seqs.entries()) {
        const text = fill(QWEN3_RERANK_TEMPLATE, query, DOCUMENTS[i]!);
        assert.deepEqual(model.tokenize(text, true), seq, `pair ${i}`);
        assert.equal(seq.filter((t) => t === tok.encode('<|im_start|>', { addSpecialTokens: false })[0]).length, 3);
      }
    } finally {
      await model.dispose();
    }
    const want = logits(served, seqs).map(sigmoid);
    const config = { ...resolveServeConfig({}, {}), port: 0 };
    const source = new EngineModelSource(config, { device: 'cpu', log: () => {} });
    const server = await startTestServer(source, [{ name: 'q3rank', path: served, ref: served }], config);
    try {
      const r = await request(`${server.url}/v1/rerank`, {
        method: 'POST',
        body: { model: 'q3rank', query, documents: DOCUMENTS, return_documents: false },
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const results = r.json.results as { index: number; relevance_score: number }[];
      assert.deepEqual(
        results.map((x) => x.index),
        order(want),
      );
      for (const x of results) assert.ok(Math.abs(x.relevance_score - want[x.index]!) < 1e-6, `document ${x.index}`);
      const tokens = seqs.reduce((n, t) => n + t.length, 0);
      assert.deepEqual(r.json.usage, { prompt_tokens: tokens, total_tokens: tokens });
    } finally {
      await server.close();
    }
  });
});
