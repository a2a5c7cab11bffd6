import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadChatTemplate } from '../../src/loader/chat-template.ts';
import { DEMO_MODEL_NAME, DEMO_MODEL_WARNING, demoWeights, ensureDemoModel } from '../../src/loader/demo-model.ts';
import { loadGenerationConfig, loadModelConfig } from '../../src/loader/hf-config.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { argmax, PagedSession } from '../helpers/paged-session.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Runs ensureDemoModel with PAGODA_HOME set to `home` (the variable is read at call time). */
function ensureIn(home: string): string {
  const saved = process.env.PAGODA_HOME;
  process.env.PAGODA_HOME = home;
  try {
    return ensureDemoModel();
  } finally {
    if (saved === undefined) delete process.env.PAGODA_HOME;
    else process.env.PAGODA_HOME = saved;
  }
}

const home = mkdtempSync(join(tmpdir(), 'pagoda-home-'));
const dir = ensureIn(home);
const homes = [home];
after(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

test('the demo model is written under $PAGODA_HOME/demo and loads as a Llama config of about 15M parameters', () => {
  assert.equal(dir, join(home, DEMO_MODEL_NAME));
  const config = loadModelConfig(dir);
  assert.equal(config.architecture, 'LlamaForCausalLM');
  assert.equal(config.vocabSize, 258);
  assert.equal(config.headDim * config.numHeads, 384);
  assert.equal(config.numKvHeads, 2);
  assert.equal(config.tieWordEmbeddings, false);
  assert.deepEqual(loadGenerationConfig(dir, config).eosTokenIds, [257]);
  const weights = openSafetensors(dir);
  let params = 0;
  for (const name of weights.names()) params += weights.get(name).shape.reduce((a, d) => a * d, 1);
  assert.ok(params > 14e6 && params < 16e6, `${params} parameters`);
  assert.deepEqual(weights.get('model.layers.7.mlp.down_proj.weight').shape, [384, 1280]);
  assert.deepEqual(weights.get('model.layers.0.self_attn.k_proj.weight').shape, [128, 384]);
  assert.deepEqual(weights.get('lm_head.weight').shape, [258, 384]);
  weights.close();
  // The weights are the same bits on every machine: a known hash of the whole file.
  assert.equal(
    sha256(readFileSync(join(dir, 'model.safetensors'))),
    '1b9c6797b1ffe5eae98dcc6ccfc6504cab5c30bc7e75c2013eaad13872e2093b',
  );
});

test('demo output rows: printable ASCII gets logits of std ~2, other bytes are damped', () => {
  const lm = demoWeights().find((t) => t.name === 'lm_head.weight');
  assert.ok(lm);
  const rowStd = (rows: number[]) => {
    let sq = 0;
    for (const r of rows) for (const v of lm.data.subarray(r * 384, (r + 1) * 384)) sq += v * v;
    return Math.sqrt(sq / (rows.length * 384));
  };
  const printable = Array.from({ length: 95 }, (_, i) => 0x20 + i);
  assert.ok(Math.abs(rowStd(printable) - 2 / Math.sqrt(384)) < 0.003, `printable std ${rowStd(printable)}`);
  assert.ok(Math.abs(rowStd([0x80, 0xc3, 0xff, 256, 257]) - 0.2 / Math.sqrt(384)) < 0.001);
});

test('the demo model runs on the CPU backend: readable text that depends on the prompt', () => {
  const model = loadModel(dir, new CpuBackend());
  const tok = loadTokenizer(dir);
  const greedy = (prompt: string) => {
    const session = new PagedSession(model, 16, 16);
    let logits = session.step([{ seq: 0, tokens: tok.encode(prompt) }])[0];
    const out: number[] = [];
    for (let i = 0; i < 12 && logits; i++) {
      out.push(argmax(logits));
      logits = session.step([{ seq: 0, tokens: [out.at(-1) as number] }])[0];
    }
    return tok.decode(out);
  };
  const a = greedy('Once upon a time');
  const b = greedy('Hello');
  assert.notEqual(a, b);
  for (const text of [a, b]) assert.match(text, /^[\x20-\x7e\n]{12}$/, JSON.stringify(text));
});

test('the byte-level tokenizer round-trips arbitrary UTF-8 and adds BOS', () => {
  const tok = loadTokenizer(dir);
  assert.equal(tok.vocabSize, 258);
  assert.equal(tok.bosTokenId, 256);
  assert.deepEqual(tok.eosTokenIds, [257]);
  assert.deepEqual(tok.encode('hé'), [256, 104, 0xc3, 0xa9]);
  const allBytes = Array.from({ length: 256 }, (_, b) => b);
  assert.equal(tok.decode(allBytes), Buffer.from(allBytes).toString('utf8'));
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  for (let trial = 0; trial < 50; trial++) {
    let text = '';
    for (let i = 0; i < 40; i++) {
      const kind = next();
      // ASCII (controls included), Latin/Greek/CJK, and astral characters (emoji): never lone surrogates.
      const cp =
        kind < 0.4
          ? Math.floor(next() * 128)
          : kind < 0.7
            ? 0x80 + Math.floor(next() * 0xd700)
            : 0x1f300 + Math.floor(next() * 0x700);
      text += String.fromCodePoint(cp);
    }
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.deepEqual(ids, [...Buffer.from(text, 'utf8')]);
    assert.equal(tok.decode(ids), text);
  }
});

test('the chat template renders and the README and warning say the weights are random', () => {
  const chat = loadChatTemplate(dir);
  assert.ok(chat);
  const text = chat.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
  assert.equal(text, '<s><|user|>\nHi</s>\n<|assistant|>\n');
  const ids = loadTokenizer(dir).encode(text, { addSpecialTokens: false });
  assert.equal(ids[0], 256);
  assert.equal(ids.filter((id) => id === 257).length, 1);
  assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /RANDOM WEIGHTS.*meaningless text/s);
  assert.match(DEMO_MODEL_WARNING, /random weights.*meaningless text/);
});

test('a second use reuses the folder; an outdated one is rebuilt', () => {
  const weights = join(dir, 'model.safetensors');
  const before = statSync(weights).mtimeMs;
  assert.equal(ensureIn(home), dir);
  assert.equal(statSync(weights).mtimeMs, before);
  writeFileSync(join(dir, '.pagoda-demo-version'), '0\n');
  writeFileSync(join(dir, 'model.safetensors'), 'stale');
  assert.equal(ensureIn(home), dir);
  assert.equal(statSync(weights).size, 60595600);
  assert.deepEqual(readdirSync(home), [DEMO_MODEL_NAME]);
});

test('concurrent first uses in separate processes agree and produce the same bytes', async () => {
  const other = mkdtempSync(join(tmpdir(), 'pagoda-home-'));
  homes.push(other);
  const script = `import { ensureDemoModel } from ${JSON.stringify(join(projectRoot, 'src/loader/demo-model.ts'))};
console.log(ensureDemoModel());`;
  const run = () =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: projectRoot,
      env: { ...process.env, PAGODA_HOME: other },
    });
  const results = await Promise.all([run(), run(), run()]);
  for (const r of results) assert.equal(r.stdout.trim(), join(other, DEMO_MODEL_NAME));
  assert.deepEqual(readdirSync(other), [DEMO_MODEL_NAME]);
  const file = (root: string) => readFileSync(join(root, DEMO_MODEL_NAME, 'model.safetensors'));
  assert.equal(sha256(file(other)), sha256(file(home)));
});
