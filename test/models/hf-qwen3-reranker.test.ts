import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { ggufHeader } from '../../src/loader/gguf/files.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { modelTask } from '../../src/loader/model-task.ts';
import { QWEN3_RERANK_TEMPLATE } from '../../src/loader/qwen3-reranker.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { FolderVariants, readTensors, type Tensors } from '../helpers/bert-variants.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests } from '../helpers/llama-cpp.ts';
import { RERANK_NO as NO, qwen3RerankerFiles, RERANK_YES as YES } from '../helpers/qwen3-reranker-folder.ts';
import { request, startTestServer } from '../server/harness.ts';

const fixture = modelFixture('tiny-qwen3');
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-hf-qwen3-rerank-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const llama = cpuLlamaForTests();

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
}

/** pagoda's relevance logits for token sequences, in one step on the CPU (float32). */
function logits(dir: string, seqs: number[][]): number[] {
  const { model } = loadPoolingModel(dir, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'score');
  assert.equal(model.outputSize, 1);
  const step = model.backend.beginStep(buildPoolingBatch(seqs.map((tokenIds) => ({ tokenIds }))));
  return [...model.backend.toHost(model.forward(step))];
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const fill = (query: string, doc: string) =>
  QWEN3_RERANK_TEMPLATE.replace(/\{(query|document)\}/g, (_, name) => (name === 'query' ? query : doc));

describe('Qwen3-Reranker from a Hugging Face folder', { skip: fixture.skip }, () => {
  let variants: FolderVariants;
  let config: Record<string, unknown>;
  let tokenizer: Record<string, unknown>;
  let tensors: Tensors;
  let golden: GoldenPrompt[];
  /** The fixture as an unconverted Qwen3-Reranker (told by `_name_or_path`), with "yes" and "no" in its vocabulary. */
  let reranker: string;

  before(() => {
    variants = new FolderVariants(fixture.path);
    const files = qwen3RerankerFiles(fixture.path);
    config = JSON.parse(readFileSync(join(fixture.path, 'config.json'), 'utf8'));
    tokenizer = files['tokenizer.json']!;
    tensors = readTensors(fixture.path);
    golden = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts;
    reranker = variants.withFiles(files);
  });
  after(() => variants.cleanup());

  /** transformers' logit(yes) - logit(no) at each golden prompt's last position. */
  const want = () => golden.map((p) => p.last_logits[YES]! - p.last_logits[NO]!);
  const close = (got: number[], label: string) => {
    const w = want();
    // Golden logits agree within about 1e-4 in float32; the other row, another token or the first position is O(1) off.
    for (const [i, g] of got.entries()) assert.ok(Math.abs(g - w[i]!) < 3e-4, `${label} prompt ${i}: ${g} vs ${w[i]}`);
    assert.ok(Math.max(...w) - Math.min(...w) > 1, 'the prompts spread');
  };

  test('an unconverted folder scores with its LM head: logit(yes) - logit(no) at the last token, as transformers computes', () => {
    assert.equal(loadTokenizer(reranker).tokenId?.('yes'), YES);
    close(
      logits(
        reranker,
        golden.map((p) => p.input_ids),
      ),
      'lm_head',
    );
  });

  test('tied embeddings (Qwen3-Reranker-0.6B): the rows come from embed_tokens', () => {
    const embed = tensors.get('model.embed_tokens.weight')!;
    const head = tensors.get('lm_head.weight')!.data;
    const H = embed.shape[1]!;
    const data = embed.data.slice();
    // The LM head's yes/no rows put into the embeddings: the golden prompts never embed these two tokens.
    for (const r of [YES, NO]) data.set(head.subarray(r * H, (r + 1) * H), r * H);
    const tied = new Map(tensors);
    tied.delete('lm_head.weight');
    tied.set('model.embed_tokens.weight', { shape: embed.shape, data });
    const dir = variants.make({ ...config, tie_word_embeddings: true, _name_or_path: 'Qwen3-Reranker-0.6B' }, tied);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
    close(
      logits(
        dir,
        golden.map((p) => p.input_ids),
      ),
      'tied',
    );
  });

  test('a folder converted to Qwen3ForSequenceClassification: its one-row score is yes - no', () => {
    const head = tensors.get('lm_head.weight')!;
    const H = head.shape[1]!;
    const score = head.data.subarray(YES * H, (YES + 1) * H).map((y, j) => y - head.data[NO * H + j]!);
    const converted = new Map(tensors);
    converted.delete('lm_head.weight');
    converted.set('score.weight', { shape: [1, H], data: score });
    const cfg = {
      ...config,
      architectures: ['Qwen3ForSequenceClassification'],
      num_labels: 1,
      _name_or_path: 'tomaarsen/Qwen3-Reranker-0.6B-seq-cls',
    };
    const dir = variants.make(cfg, converted);
    close(
      logits(
        dir,
        golden.map((p) => p.input_ids),
      ),
      'score',
    );
    const two = variants.make(
      { ...cfg, num_labels: 2 },
      new Map([...converted, ['score.weight', { shape: [2, H], data: new Float32Array(2 * H) }]]),
    );
    assert.throws(
      () => loadPoolingModel(two, new CpuBackend({ threads: 1 })),
      (e: Error) =>
        /config\.json: a Qwen3ForSequenceClassification reranker has one label and score\.weight \[1, 64\]; this one has 2 label\(s\) and \[2, 64\]$/.test(
          e.message,
        ),
    );
  });

  test("told as llama.cpp's converter tells one: README heading, folder name, _name_or_path; other folders generate", () => {
    const named = join(tmp, 'Qwen3-Reranker-4B');
    cpSync(fixture.path, named, { recursive: true });
    const byReadme = variants.withFiles({});
    writeFileSync(join(byReadme, 'README.md'), '---\nlicense: apache-2.0\n---\n## Qwen3-Reranker-0.6B\n\nText.\n');
    // A one-label Qwen3ForSequenceClassification is also what reward models are: without the name, no reranker.
    const reward = variants.withFiles({
      'config.json': { ...config, architectures: ['Qwen3ForSequenceClassification'], num_labels: 1 },
    });
    const mentionOnly = variants.withFiles({});
    writeFileSync(join(mentionOnly, 'README.md'), '# My model\n\nFine-tuned from Qwen3-Reranker-0.6B.\n');
    const llamaNamed = join(tmp, 'tiny-llama-qwen3-reranker');
    const llama = modelFixture('tiny-llama');
    if (!llama.skip) cpSync(llama.path, llamaNamed, { recursive: true });
    const task = (dir: string) => modelTask(dir, loadModelConfig(dir));
    assert.equal(task(reranker), 'score');
    assert.equal(task(named), 'score');
    assert.equal(task(byReadme), 'score');
    assert.equal(task(fixture.path), 'generate');
    assert.equal(task(mentionOnly), 'generate');
    assert.equal(task(reward), 'generate');
    if (!llama.skip) assert.equal(task(llamaNamed), 'generate', 'a llama is no Qwen3-Reranker whatever its name');
    assert.equal(loadModelConfig(reranker).raw.pagoda_rerank_template, QWEN3_RERANK_TEMPLATE);
  });

  test('refused in one line: a vocabulary without "yes"', () => {
    const dir = variants.withFiles({ 'config.json': { ...config, _name_or_path: 'Qwen/Qwen3-Reranker-8B' } });
    assert.throws(
      () => loadPoolingModel(dir, new CpuBackend({ threads: 1 })),
      (e: Error) =>
        /tokenizer\.json: a Qwen3-Reranker needs "yes" in its vocabulary \(the LM head's "yes" and "no" rows are its head\); it has none$/.test(
          e.message,
        ),
    );
  });

  test("pagoda convert writes it as llama.cpp's converter does; llama.cpp ranks that file as pagoda scores the folder", async () => {
    const file = join(tmp, 'tiny-qwen3-reranker.gguf');
    convertToGguf(reranker, file, 'f32');
    const header = ggufHeader(file);
    const head = tensors.get('lm_head.weight')!;
    const H = head.shape[1]!;
    try {
      assert.equal(header.value('qwen3.pooling_type'), 4, 'rank');
      assert.deepEqual(header.value('qwen3.classifier.output_labels'), ['yes', 'no']);
      assert.equal(header.value('tokenizer.chat_template.rerank'), QWEN3_RERANK_TEMPLATE);
      assert.equal(header.tensors.has('output.weight'), false, 'the LM head is not written');
      const cls = toFloat32(header.readTensor('cls.output.weight'));
      assert.deepEqual(
        cls,
        Float32Array.of(...head.data.subarray(YES * H, (YES + 1) * H), ...head.data.subarray(NO * H, (NO + 1) * H)),
      );
    } finally {
      header.close();
    }
    const ids = golden.map((p) => p.input_ids);
    const fromFolder = logits(reranker, ids);
    for (const [i, g] of logits(file, ids).entries()) assert.ok(Math.abs(g - fromFolder[i]!) < 1e-5, `prompt ${i}`);

    // node-llama-cpp's ranking context tokenizes the template's pieces and the texts apart: pagoda scores those ids.
    const tok = loadTokenizer(reranker);
    const query = 'where does paged attention keep the kv cache';
    const documents = [
      'paged attention keeps kv blocks',
      'the quick brown fox jumps',
      'flash attention tiles the softmax',
    ];
    const [before, between, end] = QWEN3_RERANK_TEMPLATE.split(/\{query\}|\{document\}/) as [string, string, string];
    const model = await llama().loadModel({ modelPath: file });
    const ctx = await model.createRankingContext({ contextSize: 512, threads: 1 });
    try {
      const seqs = documents.map((d) =>
        [before, query, between, d, end].flatMap((t) => {
          const ours = tok.encode(t, { addSpecialTokens: false });
          assert.deepEqual(model.tokenize(t, true), ours, JSON.stringify(t));
          return ours;
        }),
      );
      const ours = logits(reranker, seqs).map(sigmoid);
      const theirs = await ctx.rankAll(query, documents);
      // llama.cpp keeps K and V in F16 here; yes and no swapped would give 1 - p, another token an unrelated value.
      for (const [i, p] of theirs.entries())
        assert.ok(Math.abs(p - ours[i]!) < 5e-4, `document ${i}: ${p} vs ${ours[i]}`);
      assert.ok(Math.max(...ours) - Math.min(...ours) > 1e-2, `${ours}`);
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });

  test("/v1/rerank fills Qwen3-Reranker's template (as its GGUF's) and scores sigmoid(yes - no)", async () => {
    const query = 'where does paged attention keep the kv cache';
    const documents = ['paged attention keeps kv blocks', 'the quick brown fox', 'flash attention tiles'];
    const tok = loadTokenizer(reranker);
    const seqs = documents.map((d) => tok.encode(fill(query, d), { addSpecialTokens: false }));
    const expected = logits(reranker, seqs).map(sigmoid);
    const serve = { ...resolveServeConfig({}, {}), port: 0 };
    const source = new EngineModelSource(serve, { device: 'cpu', log: () => {} });
    const server = await startTestServer(source, [{ name: 'q3rank', path: reranker, ref: reranker }], serve);
    try {
      const r = await request(`${server.url}/v1/rerank`, {
        method: 'POST',
        body: { model: 'q3rank', query, documents },
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const results = r.json.results as { index: number; relevance_score: number }[];
      assert.equal(results.length, documents.length);
      for (const x of results) {
        assert.ok(Math.abs(x.relevance_score - expected[x.index]!) < 1e-6, `document ${x.index}`);
      }
      const tokens = seqs.reduce((n, t) => n + t.length, 0);
      assert.deepEqual(r.json.usage, { prompt_tokens: tokens, total_tokens: tokens });
    } finally {
      await server.close();
    }
  });
});
