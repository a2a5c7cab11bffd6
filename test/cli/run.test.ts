import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pagodaAsync, pagodaClosingStdout, pagodaSync } from '../helpers/cli.ts';
import { FakeHub } from '../helpers/fake-hub.ts';
import { projectRoot, sharedFixture } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';

const stories = sharedFixture('models/stories260K');
const home = mkdtempSync(join(tmpdir(), 'pagoda-run-test-'));

function pagoda(args: string[], input?: string, pagodaHome = home) {
  return pagodaSync(args, {
    input,
    env: { ...process.env, PAGODA_HOME: pagodaHome },
  });
}

test('pagoda run stories260K prints exactly the golden greedy continuation', { skip: stories.skip }, () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  const r = pagoda(['run', stories.path, 'Once upon a time', '--max-tokens', '64']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${p.greedy_text}\n`);
  assert.match(r.stderr, /KV cache: \d+ blocks of 16 tokens .* up to \d+ concurrent tokens/);
});

const storiesGguf = sharedFixture('gguf/stories260K.gguf');
test('pagoda run on a GGUF file with no extension (as Ollama stores blobs) prints the same golden continuation', {
  skip: stories.skip || storiesGguf.skip,
}, () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  const blob = join(home, 'sha256-stories');
  copyFileSync(storiesGguf.path, blob);
  const r = pagoda(['run', blob, 'Once upon a time', '--max-tokens', '64', '--device', 'cpu']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${p.greedy_text}\n`);
});

test('--stop takes one value: the prompt after it is still the prompt', { skip: stories.skip }, () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  const r = pagoda(['run', stories.path, '--stop', '.', 'Once upon a time', '--max-tokens', '64']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${p.greedy_text.slice(0, p.greedy_text.indexOf('.'))}\n`);
});

test('invalid sampling flags are refused before the model loads, in one line naming the flag', () => {
  // The model does not exist: a refusal naming the flag proves the flags were checked first.
  const r = pagoda(['run', join(home, 'no-such-model'), 'hi', '--temperature', '-1']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'error: --temperature -1: expected a number >= 0\n');
});

test('the first run that writes the demo model says where, once', () => {
  const fresh = mkdtempSync(join(tmpdir(), 'pagoda-run-demo-'));
  try {
    const run = () => pagoda(['run', 'demo', 'Hi', '--max-tokens', '2', '--kv-cache-memory', '8MiB'], undefined, fresh);
    const first = run();
    assert.equal(first.status, 0, first.stderr);
    const line = `writing the built-in demo model to ${join(fresh, 'demo')} (first use)\n`;
    assert.ok(first.stderr.includes(line), first.stderr);
    const second = run();
    assert.equal(second.status, 0, second.stderr);
    assert.ok(!second.stderr.includes('writing the built-in demo model'), second.stderr);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('pagoda run with a prompt only uses the demo model and says so', () => {
  const r = pagoda(['run', 'Hello there', '--max-tokens', '4', '--kv-cache-memory', '8MiB']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /demo model.*meaningless text/);
  assert.ok(r.stdout.length > 1);
});

test('a model name that is nowhere is an error saying where pagoda looked, never a prompt for the demo', () => {
  const stores = {
    PAGODA_MODELS: join(home, 'models'),
    OLLAMA_MODELS: join(home, 'ollama'),
    HF_HUB_CACHE: join(home, 'hf'),
  };
  // (A Hub repo id, org/repo, is pulled first instead: see the test below.)
  for (const name of ['llama3.2', 'llama3.2:1b', 'hf.co/acme/tiny-GGUF:Q4_K_M']) {
    const r = pagodaSync(['run', name], {
      env: { ...process.env, PAGODA_HOME: home, ...stores },
    });
    assert.equal(r.status, 1, name);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `error: model "${name}" not found in the store (${stores.PAGODA_MODELS}), Ollama's store (${stores.OLLAMA_MODELS}) ` +
        `or the Hugging Face cache (${stores.HF_HUB_CACHE}); pull it with \`pagoda pull ${name}\`\n`,
    );
  }
  const path = pagoda(['run', './no-such-folder']);
  assert.equal(path.status, 1);
  assert.equal(path.stderr, 'error: ./no-such-folder: no such model folder or .gguf file\n');
});

test('a one-word prompt that cannot be a model name still runs the demo', () => {
  const r = pagoda(['run', 'Why?', '--max-tokens', '2', '--kv-cache-memory', '8MiB']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /demo model/);
});

// A random-weight model whose greedy continuation changes with any change of the prompt (the demo model's does not).
const tinyLlama = join(projectRoot, 'test/fixtures/models/tiny-llama');
const tinyFlags = ['--max-tokens', '8', '--device', 'cpu'];

test('unquoted prompt words after the model are one prompt, joined by spaces (as ollama run joins them)', () => {
  const quoted = pagoda(['run', tinyLlama, 'Why is the sky blue', ...tinyFlags]);
  assert.equal(quoted.status, 0, quoted.stderr);
  const words = pagoda(['run', tinyLlama, 'Why', 'is', 'the', 'sky', 'blue', ...tinyFlags]);
  assert.equal(words.status, 0, words.stderr);
  assert.equal(words.stdout, quoted.stdout);
  assert.notEqual(pagoda(['run', tinyLlama, 'Why', ...tinyFlags]).stdout, quoted.stdout, 'every word was read');
});

test('text piped to stdin comes before the prompt words, joined by a space (as ollama run prepends it)', () => {
  const joined = pagoda(['run', tinyLlama, 'Why is the sky blue', ...tinyFlags]);
  assert.equal(joined.status, 0, joined.stderr);
  const piped = pagoda(['run', tinyLlama, 'sky', 'blue', ...tinyFlags], 'Why is the\n');
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(piped.stdout, joined.stdout);
  const wordsOnly = pagoda(['run', tinyLlama, 'sky', 'blue', ...tinyFlags], '');
  assert.notEqual(wordsOnly.stdout, joined.stdout, 'the piped text was part of the prompt');
});

test('a reader that closes stdout early (| head -n 1) ends pagoda run quietly, with status 0', {
  skip: stories.skip,
}, async () => {
  const args = ['run', stories.path, 'Once', '--max-tokens', '400', '--ignore-eos'];
  const r = await pagodaClosingStdout(args, { ...process.env, PAGODA_HOME: home });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
});

test('--max-tokens past the context is capped to what fits; a prompt past it is one line naming num_ctx', {
  skip: stories.skip,
}, () => {
  const long = pagoda(['run', stories.path, 'Once', '--max-tokens', '5000', '--ignore-eos']);
  assert.equal(long.status, 0, long.stderr);
  assert.ok(long.stdout.length > 1000, 'it generated until the context was full');
  const tooLong = pagoda(['run', stories.path], 'Once upon a time '.repeat(200));
  assert.equal(tooLong.status, 1);
  assert.match(
    tooLong.stderr,
    /\nerror: the prompt is \d+ tokens, but the model's context length \(num_ctx\) is 512 tokens\n$/,
  );
});

test('pagoda run errors are one line with a non-zero exit', () => {
  const bad = pagoda(['run', 'demo', 'hi', '--top-p', 'lots']);
  assert.notEqual(bad.status, 0);
  assert.equal(bad.stderr.trim(), 'error: --top-p lots: expected a number');
  const missing = pagoda(['run', join(home, 'no-such-model'), 'hi']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /^error: .*no-such-model: no such model folder/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
});

test('engine sizes that must be positive integers are refused in one line naming the flag', () => {
  for (const flag of ['--max-model-len', '--block-size', '--max-num-seqs', '--max-num-batched-tokens']) {
    const r = pagoda(['run', 'demo', 'hi', flag, '0', '--kv-cache-memory', '8MiB']);
    assert.equal(r.status, 1, flag);
    assert.equal(r.stderr.split('\n').at(-2), `error: ${flag} 0: expected a positive integer`);
  }
});

test('pagoda run pulls a Hub model it does not have (as ollama run does), and only once', async () => {
  const hub = await new FakeHub().start();
  const cache = mkdtempSync(join(tmpdir(), 'pagoda-run-pull-'));
  const run = (args: string[]) =>
    pagodaAsync(['run', ...args], {
      env: { ...process.env, PAGODA_HOME: home, HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache },
    });
  try {
    const folder = join(projectRoot, 'test/fixtures/models/tiny-llama');
    hub.repos.set('acme/tiny-llama', { commit: 'e'.repeat(40), files: readModelFolder(folder) });
    const args = ['acme/tiny-llama', 'Hello', '--max-tokens', '5', '--temperature', '0'];
    const first = await run(args);
    assert.match(first.stderr, /acme\/tiny-llama is not here yet: pulling it from the Hugging Face Hub/);
    const requests = hub.requests.length;
    assert.ok(requests > 0);
    const second = await run(args);
    assert.equal(second.stdout, first.stdout, 'the same greedy continuation');
    assert.ok(first.stdout.trim().length > 0);
    assert.doesNotMatch(second.stderr, /pulling/);
    assert.equal(hub.requests.length, requests, 'the second run found the model in the cache');
    // A repo the Hub does not have: one line naming it, no demo model run on its name.
    const missing = await run(['acme/absent', 'Hello']).catch((err: { stderr: string; code: number }) => err);
    assert.equal((missing as { code: number }).code, 1);
    assert.match((missing as { stderr: string }).stderr.trim().split('\n').at(-1)!, /^error: .*acme\/absent/);
  } finally {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  }
});
