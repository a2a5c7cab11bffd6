import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadChatTemplate } from '../../src/loader/chat-template.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { UserError } from '../../src/util/errors.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const fixture = modelFixture('tiny-llama');

/** `fn` fails with a one-line UserError matching `pattern`. */
function assertOneLine(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    assert.ok(!err.message.includes('\n'), `message spans lines: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('loader errors name the file and what was expected', { skip: fixture.skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pagoda-loader-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of tiny-llama with some files replaced (null deletes the file). */
  function variant(name: string, files: Record<string, string | null>): string {
    const dir = join(tmp, name);
    cpSync(fixture.path, dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      if (text === null) rmSync(join(dir, file));
      else writeFileSync(join(dir, file), text);
    }
    return dir;
  }

  test('a missing model folder or config.json', () => {
    assertOneLine(() => loadModelConfig(join(tmp, 'nowhere')), /nowhere: model folder not found/);
    const dir = variant('no-config', { 'config.json': null });
    assertOneLine(
      () => loadModelConfig(dir),
      /no-config\/config\.json: file not found \(expected a Hugging Face model folder with config\.json\)/,
    );
  });

  test('bad JSON in config.json gives the line and column when the parser reports a position', () => {
    const comma = variant('comma', { 'config.json': '{"a": 1,\n "b": 2,\n}' });
    assertOneLine(() => loadModelConfig(comma), /comma\/config\.json: not valid JSON at line 3 column 1 \(.+\)$/);
    const token = variant('token', { 'config.json': '{"model_type": "llama",\n "vocab_size": }\n' });
    assertOneLine(() => loadModelConfig(token), /token\/config\.json: not valid JSON.*\(Unexpected token .}.\)$/);
    const list = variant('list', { 'config.json': '[1, 2]' });
    assertOneLine(
      () => loadModelConfig(list),
      /list\/config\.json: expected a JSON object at the top level, found an array/,
    );
  });

  test('bad JSON in tokenizer.json or tokenizer_config.json', () => {
    const tok = variant('bad-tok', { 'tokenizer.json': '{"model": ' });
    assertOneLine(
      () => loadTokenizer(tok),
      /bad-tok\/tokenizer\.json: not valid JSON \(Unexpected end of JSON input\)/,
    );
    const cfg = variant('bad-cfg', { 'tokenizer_config.json': '{"bos_token": "<s>" "eos_token": "</s>"}' });
    assertOneLine(() => loadTokenizer(cfg), /bad-cfg\/tokenizer_config\.json: not valid JSON/);
    assertOneLine(() => loadChatTemplate(cfg), /bad-cfg\/tokenizer_config\.json: not valid JSON/);
  });

  test('a missing tokenizer.json, with a hint when only a sentencepiece model is there', () => {
    const none = variant('no-tok', { 'tokenizer.json': null });
    assertOneLine(
      () => loadTokenizer(none),
      /no-tok\/tokenizer\.json: file not found \(expected a Hugging Face tokenizer\.json beside config\.json\)/,
    );
    const sp = variant('sp-only', { 'tokenizer.json': null, 'tokenizer.model': 'sentencepiece bytes' });
    assertOneLine(
      () => loadTokenizer(sp),
      /sp-only\/tokenizer\.json: file not found \(the folder has only a sentencepiece tokenizer\.model/,
    );
  });

  test('a tokenizer.json the library cannot build from', () => {
    const dir = variant('empty-tok', { 'tokenizer.json': '{}' });
    assertOneLine(
      () => loadTokenizer(dir),
      /empty-tok\/tokenizer\.json: unsupported or malformed tokenizer \(Tokenizer must contain a "model" property\)/,
    );
  });
});
