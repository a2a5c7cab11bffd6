import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { engineOptionsFrom } from '../../src/cli/engine-options.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'pagoda-chat-template-'));
after(() => rmSync(root, { recursive: true, force: true }));
const TINY = join(projectRoot, 'test/fixtures/models/tiny-llama');
const TEMPLATE = '{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<bot>';

test("--chat-template (a file or the text) replaces the model's template; its special tokens stay the model's", async () => {
  const file = join(root, 'chat.jinja');
  writeFileSync(file, TEMPLATE);
  const saved = process.env.PAGODA_CHAT_TEMPLATE;
  process.env.PAGODA_CHAT_TEMPLATE = file;
  try {
    assert.equal(engineOptionsFrom({}).chatTemplate, file, 'PAGODA_CHAT_TEMPLATE');
    assert.equal(engineOptionsFrom({ chatTemplate: TEMPLATE }).chatTemplate, TEMPLATE, 'the flag wins');
  } finally {
    if (saved === undefined) delete process.env.PAGODA_CHAT_TEMPLATE;
    else process.env.PAGODA_CHAT_TEMPLATE = saved;
  }
  for (const value of [file, TEMPLATE]) {
    const loaded = loadEngine(TINY, { device: 'cpu', chatTemplate: value });
    try {
      assert.equal(loaded.chatTemplate?.render([{ role: 'user', content: 'Hi' }]), '<s><user>Hi<bot>');
    } finally {
      await loaded.engine.shutdown(true);
    }
  }
  assert.throws(
    () => loadEngine(TINY, { device: 'cpu', chatTemplate: join(root, 'missing.jinja') }),
    /^UserError: --chat-template .*missing\.jinja: no such file, and not a Jinja template either$/,
  );
});
