import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { ggufHeader } from '../../src/loader/gguf/files.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { cpuLlamaForTests, llamaCppUnitEmbeddings } from '../helpers/llama-cpp.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

interface Golden {
  query: string;
  pairs: { document: string; input_ids: number[]; logit: number; score: number }[];
}

const fixture = modelFixture('tiny-xlmr-reranker');
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-gguf-xlmr-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const llama = cpuLlamaForTests();

const TEXTS = [
  'the quick brown fox jumps over the lazy dog.',
  'paged attention stores the kv cache in fixed-size blocks!',
  'café naïve résumé, déjà vu',
  'Flash Attention 将S写入到HBM, then the kernel',
  '  leading,   inner   and trailing spaces  ',
  'unknown pieces: ☃☃ zzzqqq ¿¡ — 123,456.78',
];

function logits(path: string, inputs: { tokenIds: number[] }[]): Float32Array {
  const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
  assert.equal(model.task, 'score');
  return model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
}

/**
 * The fixture with an XLM-R style Unigram tokenizer.json over its vocabulary (word starts behind ▁, `##` dropped,
 * scores falling with the id): the SentencePiece vocabulary bge-m3 ships, at the fixture's size.
 */
function unigramCopy(): string {
  const dir = join(tmp, 'tiny-xlmr-unigram');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixture.path, f), join(dir, f));
  const wordPiece = JSON.parse(readFileSync(join(fixture.path, 'tokenizer.json'), 'utf8'));
  const added = wordPiece.added_tokens as { id: number; content: string }[];
  const special = new Set(added.map((t) => t.id));
  const vocab: [string, number][] = [];
  for (const [text, id] of Object.entries(wordPiece.model.vocab as Record<string, number>)) {
    const piece = special.has(id) ? text : text.startsWith('##') ? text.slice(2) : `▁${text}`;
    vocab[id] = [piece, special.has(id) ? 0 : -Math.log(id + 2)];
  }
  assert.equal(new Set(vocab.map(([p]) => p)).size, vocab.length, 'pieces are unique');
  const json = {
    version: '1.0',
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Strip', strip_left: true, strip_right: true },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
      ],
    },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: { type: 'RobertaProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2], trim_offsets: true },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 1, vocab, byte_fallback: false },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const config = { bos_token: '[CLS]', eos_token: '[SEP]', sep_token: '[SEP]', cls_token: '[CLS]', unk_token: '[UNK]' };
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ ...config, pad_token: '[PAD]', mask_token: '[MASK]' }),
  );
  return dir;
}

describe('tiny-xlmr-reranker as GGUF', { skip: fixture.skip }, () => {
  const golden = () => JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as Golden;

  test('F32: positions without the padding rows, RoBERTa head as cls; the golden pair ids and logits', () => {
    const out = join(tmp, 'tiny-xlmr-f32.gguf');
    convertToGguf(fixture.path, out, 'f32');
    const header = ggufHeader(out);
    assert.deepEqual(header.tensors.get('position_embd.weight')?.dims, [64, 513]);
    assert.equal(header.value('bert.context_length'), 513);
    assert.equal(header.value('tokenizer.ggml.token_type_count'), 1);
    assert.ok(header.tensors.has('cls.weight') && header.tensors.has('cls.output.weight'));
    const g = golden();
    const tok = loadTokenizer(out);
    const inputs = g.pairs.map((p) => {
      const pair = tok.encodePair!(g.query, p.document);
      assert.deepEqual(pair.ids, p.input_ids);
      return { tokenIds: pair.ids };
    });
    const got = logits(out, inputs);
    for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(got[i]! - p.logit) < 1e-4, `pair ${i}: ${got[i]}`);
  });

  test('a Unigram tokenizer.json round-trips through the t5 vocabulary: same ids, same logits', () => {
    const dir = unigramCopy();
    const out = join(tmp, 'tiny-xlmr-unigram-f32.gguf');
    convertToGguf(dir, out, 'f32');
    const header = ggufHeader(out);
    assert.equal(header.value('tokenizer.ggml.model'), 't5');
    assert.equal(header.value('tokenizer.ggml.bos_token_id'), 2);
    assert.equal(header.value('tokenizer.ggml.seperator_token_id'), 3);
    const [ours, theirs] = [loadTokenizer(out), loadTokenizer(dir)];
    for (const text of TEXTS) assert.deepEqual(ours.encode(text), theirs.encode(text), text);
    assert.ok(ours.encode(TEXTS[5]!).includes(1), 'an unknown piece');
    const g = golden();
    const inputs = g.pairs.map((p) => {
      const pair = ours.encodePair!(g.query, p.document);
      // RobertaProcessing numbers the second text's tokens 1; XLM-R has one token type, which pagoda's template uses.
      assert.deepEqual(pair.ids, theirs.encodePair!(g.query, p.document).ids);
      assert.deepEqual(pair.ids.slice(0, 1), [2]);
      return { tokenIds: pair.ids };
    });
    const [fromGguf, fromFolder] = [logits(out, inputs), logits(dir, inputs)];
    for (let i = 0; i < inputs.length; i++) assert.ok(Math.abs(fromGguf[i]! - fromFolder[i]!) < 1e-4, `pair ${i}`);
  });

  // The reranker's encoder as XLMRobertaModel (its head is written too, unread): CLS pooling, as bge-m3 embeds.
  test('an XLM-R embedder: the GGUF embeds as its folder does and as llama.cpp does', async () => {
    const dir = join(tmp, 'tiny-xlmr-embed');
    mkdirSync(dir, { recursive: true });
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(join(fixture.path, f), join(dir, f));
    }
    const config = JSON.parse(readFileSync(join(fixture.path, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['XLMRobertaModel'] }));
    const out = join(tmp, 'tiny-xlmr-embed-f32.gguf');
    convertToGguf(dir, out, 'f32');
    assert.equal(ggufHeader(out).value('bert.pooling_type'), 2);
    const embed = (path: string) => {
      const tok = loadTokenizer(path);
      const { model } = loadPoolingModel(path, new CpuBackend({ threads: 1 }));
      assert.equal(model.task, 'embed');
      const batch = buildPoolingBatch(TEXTS.map((t) => ({ tokenIds: tok.encode(t) })));
      const flat = model.backend.toHost(model.forward(model.backend.beginStep(batch)));
      return TEXTS.map((_, i) => [...flat.subarray(i * model.outputSize, (i + 1) * model.outputSize)]);
    };
    const [ours, folder] = [embed(out), embed(dir)];
    for (const [i, row] of ours.entries()) assert.ok(maxAbsDiff(row, folder[i]!) < 1e-4, `text ${i}`);
    const theirs = await llamaCppUnitEmbeddings(llama(), out, TEXTS, 256);
    for (const [i, row] of theirs.entries()) {
      const diff = maxAbsDiff(ours[i]!, row);
      assert.ok(diff < 2e-3, `text ${i}: ${diff}`);
    }
  });

  test('llama.cpp (node-llama-cpp) tokenizes the t5 file as pagoda does and ranks within its F16 rounding', async () => {
    const out = join(tmp, 'tiny-xlmr-unigram-f32.gguf');
    const tok = loadTokenizer(out);
    const model = await llama().loadModel({ modelPath: out });
    const ctx = await model.createRankingContext({ contextSize: 256, threads: 1 });
    try {
      const g = golden();
      for (const text of [...TEXTS, g.query, ...g.pairs.map((p) => p.document)]) {
        assert.deepEqual(model.tokenize(text), tok.encode(text, { addSpecialTokens: false }), text);
      }
      const inputs = g.pairs.map((p) => ({ tokenIds: tok.encodePair!(g.query, p.document).ids }));
      const ours = logits(out, inputs);
      for (const [i, p] of g.pairs.entries()) {
        // Token ids, not texts: node-llama-cpp tokenizes rank texts with trimLeadingSpace, dropping a UGM text's first ▁.
        const score = await ctx.rank(model.tokenize(g.query), model.tokenize(p.document));
        const expected = 1 / (1 + Math.exp(-ours[i]!));
        assert.ok(Math.abs(score - expected) < 2e-3, `pair ${i}: llama.cpp ${score}, pagoda ${expected}`);
      }
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
  });
});
