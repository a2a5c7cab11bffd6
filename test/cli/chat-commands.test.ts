import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatStats, statsFromOllama } from '../../src/cli/chat/answer-stats.ts';
import { localChat } from '../../src/cli/chat/backends.ts';
import { MultilineInput } from '../../src/cli/chat/multiline.ts';
import { applySet, applyUnset, type ChatSettings } from '../../src/cli/chat/set-command.ts';
import { applyShow } from '../../src/cli/chat/show-command.ts';
import { describeModel } from '../../src/cli/model-description.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const tinyLlama = join(projectRoot, 'test/fixtures/models/tiny-llama');
/** A model with a chat template that cannot think, as `/set` sees it. */
const MODEL = { hasTemplate: true, thinks: false, model: 'plain' };

test('""" opens a multi-line message that ends at a line ending with """ (as in ollama run)', () => {
  const input = new MultilineInput();
  assert.equal(input.add('plain line'), 'plain line');
  assert.equal(input.add('"""first'), null);
  assert.ok(input.open);
  assert.equal(input.add('  second'), null);
  assert.equal(input.add('third"""'), 'first\n  second\nthird');
  assert.ok(!input.open);
  assert.equal(input.add('"""one line"""'), 'one line');
  assert.equal(input.add('"""'), null);
  assert.equal(input.add('body'), null);
  assert.equal(input.add('"""'), 'body', 'lines holding only the quotes are left out');
});

test('/set verbose, quiet and format json, /unset format, and unknown subcommands said to be unknown', () => {
  const settings: ChatSettings = { params: {}, raw: false };
  assert.equal(applySet(' verbose', settings, MODEL), 'Set verbose mode.');
  assert.equal(settings.verbose, true);
  assert.equal(applySet(' quiet', settings, MODEL), 'Set quiet mode.');
  assert.equal(settings.verbose, false);
  assert.equal(applySet(' format json', settings, MODEL), "Set format to 'json' mode.");
  assert.equal(settings.format, 'json');
  assert.equal(applySet(' format yaml', settings, MODEL), 'Couldn\'t set format: expected "json", got "yaml"');
  assert.equal(applyUnset(' format', settings), 'Disabled format.');
  assert.equal(settings.format, undefined);
  assert.equal(applySet(' wordwrap', settings, MODEL), "Unknown command '/set wordwrap'. Type /set for help");
  assert.equal(applyUnset(' nothing', settings), "Unknown command '/unset nothing'. Type /unset for help");
  assert.match(applySet('', settings, MODEL), /^Available \/set commands:/);
});

test('/set think [level] and /set nothink on a thinking model; refused on one that cannot think', () => {
  const settings: ChatSettings = { params: {}, raw: false };
  const thinker = { ...MODEL, thinks: true, model: 'thinker' };
  assert.equal(applySet(' think', settings, thinker), "Set 'think' mode.");
  assert.equal(settings.think, true);
  assert.equal(applySet(' think high', settings, thinker), "Set 'think' mode to 'high'.");
  assert.equal(settings.think, 'high');
  assert.equal(
    applySet(' think loud', settings, thinker),
    'Couldn\'t set think: expected high, medium or low, got "loud"',
  );
  assert.equal(settings.think, 'high');
  assert.equal(applySet(' nothink', settings, thinker), "Set 'nothink' mode.");
  assert.equal(settings.think, false);
  assert.equal(applySet(' think', settings, MODEL), '"plain" does not support thinking');
  assert.equal(settings.think, false);
});

test('/show prints what pagoda show prints for the model', () => {
  assert.equal(applyShow(' info', tinyLlama), describeModel(tinyLlama));
  assert.match(applyShow(' info', tinyLlama), /architecture\s+llama/);
  assert.equal(applyShow(' modelfile', tinyLlama), describeModel(tinyLlama, 'modelfile').trimEnd());
  assert.equal(applyShow(' system', tinyLlama), 'No system was specified for this model.');
  assert.equal(applyShow(' nonsense', tinyLlama), "Unknown command '/show nonsense'. Type /show for help");
  assert.match(applyShow(' info', join(tinyLlama, 'absent')), /^Couldn't show info: /);
});

test('verbose stats are printed as ollama run --verbose prints them', () => {
  const stats = statsFromOllama({
    total_duration: 2_500_000_000,
    load_duration: 1_000_000,
    prompt_eval_count: 10,
    prompt_eval_duration: 500_000_000,
    eval_count: 40,
    eval_duration: 2_000_000_000,
  });
  const text = formatStats(stats);
  assert.match(text, /^total duration: {7}2\.500s$/m);
  assert.match(text, /^prompt eval rate: {5}20\.00 tokens\/s$/m);
  assert.match(text, /^eval count: {11}40 token\(s\)$/m);
  assert.match(text, /^eval rate: {12}20\.00 tokens\/s$/m);
});

test('the in-process chat answers in JSON after /set format json, and reports its stats', async () => {
  const loaded = loadEngine(tinyLlama, { log: () => {} });
  try {
    const settings: ChatSettings = { params: { temperature: 0, maxTokens: 24 }, raw: false, format: 'json' };
    let answer = '';
    let evalTokens = 0;
    const chat = localChat(loaded, tinyLlama);
    for await (const d of chat.stream([{ role: 'user', content: 'Hi' }], settings, new AbortController().signal)) {
      if (typeof d === 'string') answer += d;
      else if ('evalTokens' in d) evalTokens = d.evalTokens;
    }
    assert.match(answer.trimStart(), /^[{[]/, answer);
    assert.ok(evalTokens > 0);
  } finally {
    await loaded.engine.shutdown(true);
  }
});
