import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readSentenceTransformers } from '../../src/loader/sentence-transformers.ts';
import { UserError } from '../../src/util/errors.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const MODULES_2_5 = [
  { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
];

for (const [name, style, want] of [
  ['tiny-bert', '6.x', { pooling: 'mean', maxSeqLength: null, prompts: { document: '', query: '' } }],
  ['tiny-qwen3-embed', '2-5', { pooling: 'last', maxSeqLength: 512, prompts: {} }],
] as const) {
  const fixture = modelFixture(name);
  test(`${name} (${style} files): pooling, Normalize, max_seq_length and prompts`, { skip: fixture.skip }, () => {
    assert.deepEqual(readSentenceTransformers(fixture.path, 64), {
      ...want,
      normalize: true,
      doLowerCase: false,
      includePrompt: true,
    });
  });
}

describe('sentence-transformers folders: every pooling spelling, and one-line errors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pagoda-st-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  /** A folder with modules.json and 1_Pooling/config.json (plus extra files). */
  function folder(pooling: unknown, modules: unknown = MODULES_2_5, extra: Record<string, unknown> = {}): string {
    const dir = join(tmp, String(n++));
    mkdirSync(join(dir, '1_Pooling'), { recursive: true });
    writeFileSync(join(dir, 'modules.json'), typeof modules === 'string' ? modules : JSON.stringify(modules));
    writeFileSync(join(dir, '1_Pooling', 'config.json'), JSON.stringify(pooling));
    for (const [file, value] of Object.entries(extra)) writeFileSync(join(dir, file), JSON.stringify(value));
    return dir;
  }
  const fails = (dir: string, pattern: RegExp) =>
    assert.throws(
      () => readSentenceTransformers(dir, 64),
      (err: unknown) => err instanceof UserError && !err.message.includes('\n') && pattern.test(err.message),
    );

  test('no modules.json: not a sentence-transformers folder', () => {
    assert.equal(readSentenceTransformers(tmp, 64), null);
  });

  test('the 2-5 flags and the 6.x names give the same modes', () => {
    const flags = {
      pooling_mode_cls_token: 'cls',
      pooling_mode_mean_tokens: 'mean',
      pooling_mode_max_tokens: 'max',
      pooling_mode_mean_sqrt_len_tokens: 'mean_sqrt_len',
      pooling_mode_weightedmean_tokens: 'weighted_mean',
      pooling_mode_lasttoken: 'last',
    };
    for (const [flag, mode] of Object.entries(flags)) {
      const config = {
        word_embedding_dimension: 64,
        ...Object.fromEntries(Object.keys(flags).map((f) => [f, f === flag])),
      };
      assert.equal(readSentenceTransformers(folder(config), 64)?.pooling, mode, flag);
    }
    for (const [name, mode] of [
      ['mean', 'mean'],
      ['cls', 'cls'],
      ['max', 'max'],
      ['lasttoken', 'last'],
      ['mean_sqrt_len_tokens', 'mean_sqrt_len'],
      ['weightedmean', 'weighted_mean'],
    ]) {
      assert.equal(
        readSentenceTransformers(folder({ embedding_dimension: 64, pooling_mode: name }), 64)?.pooling,
        mode,
      );
    }
  });

  test('without Normalize the embeddings are left as pooled; do_lower_case and include_prompt are read', () => {
    const dir = folder({ pooling_mode: ['cls'], include_prompt: false }, MODULES_2_5, {
      'sentence_bert_config.json': { max_seq_length: 128, do_lower_case: true },
      'config_sentence_transformers.json': { prompts: { query: 'query: ' }, default_prompt_name: 'query' },
    });
    assert.deepEqual(readSentenceTransformers(dir, 64), {
      pooling: 'cls',
      normalize: false,
      maxSeqLength: 128,
      doLowerCase: true,
      prompts: { query: 'query: ' },
      includePrompt: false,
    });
  });

  test('unsupported modules, pooling and sizes are refused naming the file and value', () => {
    const dense = [...MODULES_2_5, { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' }];
    fails(
      folder({ pooling_mode: 'mean' }, dense),
      /modules\.json: module 2 has type "sentence_transformers\.models\.Dense"/,
    );
    fails(folder({ pooling_mode: 'mean' }, [MODULES_2_5[0]]), /modules\.json: no Pooling module/);
    fails(folder({ pooling_mode: 'mean' }, '{"not": "a list"}'), /modules\.json: expected a JSON array/);
    fails(folder({ pooling_mode: 'mean' }, '[{'), /modules\.json: not valid JSON/);
    fails(folder({ pooling_mode: 'median' }), /1_Pooling.config\.json: pooling_mode "median" is not supported/);
    fails(
      folder({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: true }),
      /pooling modes cls \+ mean are concatenated/,
    );
    fails(folder({ pooling_mode_cls_token: false }), /no pooling mode is set/);
    fails(
      folder({ pooling_mode: 'mean', embedding_dimension: 32 }),
      /embedding dimension 32 differs .* hidden_size 64/,
    );
    fails(
      folder({ pooling_mode: 'mean' }, MODULES_2_5, { 'sentence_bert_config.json': { max_seq_length: -5 } }),
      /sentence_bert_config\.json: max_seq_length -5 is not a positive integer/,
    );
    fails(
      folder({ pooling_mode: 'mean' }, MODULES_2_5, { 'config_sentence_transformers.json': { prompts: { q: 3 } } }),
      /prompts\.q must be a string/,
    );
  });
});
