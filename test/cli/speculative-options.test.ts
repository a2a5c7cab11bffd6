import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { addEngineOptions, engineOptionsFrom, speculativeOptionsFrom } from '../../src/cli/engine-options.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { UserError } from '../../src/util/errors.ts';
import { pagodaSync } from '../helpers/cli.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';

const stories = sharedFixture('models/stories260K');
const tinyLlama = modelFixture('tiny-llama');

function flags(args: string[]): Record<string, unknown> {
  const cmd = addEngineOptions(new Command().exitOverride());
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

test('--speculative and its companions, over the PAGODA_SPECULATIVE* variables, with defaults', () => {
  assert.equal(engineOptionsFrom(flags([])).speculative, undefined);
  assert.deepEqual(engineOptionsFrom(flags(['--speculative', 'ngram'])).speculative, {
    proposer: 'ngram',
    numTokens: 4,
    ngramMin: 1,
    ngramMax: 4,
  });
  const env = settingsFromEnv({
    PAGODA_SPECULATIVE: 'ngram',
    PAGODA_NUM_SPECULATIVE_TOKENS: '7',
    PAGODA_SPECULATIVE_NGRAM_MAX: '5',
  }).speculative;
  assert.deepEqual(speculativeOptionsFrom({}, env), { proposer: 'ngram', numTokens: 7, ngramMin: 1, ngramMax: 5 });
  const both = flags([
    '--speculative',
    '/models/draft',
    '--num-speculative-tokens',
    '3',
    '--speculative-ngram-min',
    '2',
  ]);
  assert.deepEqual(speculativeOptionsFrom(both, env), {
    proposer: '/models/draft',
    numTokens: 3,
    ngramMin: 2,
    ngramMax: 5,
  });
});

test('bad speculative settings are one line naming the flag or variable', () => {
  const refuses = (opts: Record<string, unknown>, env: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => speculativeOptionsFrom(opts, settingsFromEnv(env).speculative),
      (e: unknown) => e instanceof UserError && message.test(e.message) && !e.message.includes('\n'),
    );
  refuses(
    flags(['--speculative', 'ngram', '--num-speculative-tokens', 'x']),
    {},
    /^--num-speculative-tokens x: expected an integer$/,
  );
  refuses(
    {},
    { PAGODA_SPECULATIVE: 'ngram', PAGODA_NUM_SPECULATIVE_TOKENS: '0' },
    /^PAGODA_NUM_SPECULATIVE_TOKENS 0: expected a positive integer$/,
  );
  refuses(flags(['--num-speculative-tokens', '3']), {}, /^--num-speculative-tokens 3: needs --speculative/);
  refuses(
    flags(['--speculative', 'ngram', '--speculative-ngram-min', '4', '--speculative-ngram-max', '2']),
    {},
    /^--speculative-ngram-min 4: expected at most --speculative-ngram-max \(2\)$/,
  );
});

test('a draft model of another vocabulary is refused in one line', { skip: stories.skip || tinyLlama.skip }, () => {
  const speculative = { proposer: stories.path, numTokens: 4, ngramMin: 1, ngramMax: 4 };
  assert.throws(
    () => loadEngine(tinyLlama.path, { device: 'cpu', speculative, log: () => {} }),
    /--speculative .*stories260K: its vocabulary has 512 tokens, the model's 1024; a draft model needs the same vocabulary$/,
  );
});

test('pagoda run --speculative ngram prints the same greedy text as without', { skip: stories.skip }, () => {
  const home = mkdtempSync(join(tmpdir(), 'pagoda-spec-test-'));
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const p = golden.prompts.find((x: { text: string }) => x.text === 'Once upon a time');
  for (const args of [
    ['--speculative', 'ngram'],
    ['--speculative', stories.path, '--num-speculative-tokens', '2'],
  ]) {
    const r = pagodaSync(['run', stories.path, 'Once upon a time', '--max-tokens', '64', ...args], {
      env: { ...process.env, PAGODA_HOME: home },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${p.greedy_text}\n`);
  }
});
