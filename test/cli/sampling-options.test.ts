import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { addSamplingOptions, samplingParamsFrom, withRunDefaults } from '../../src/cli/sampling-options.ts';

/** Parses `args` as `run [model] [prompt]` with the sampling flags; returns the positionals and the given params. */
function parse(args: string[]) {
  const cmd = addSamplingOptions(new Command('run').argument('[model]').argument('[prompt]')).exitOverride();
  cmd.parse(args, { from: 'user' });
  return { args: cmd.args, params: samplingParamsFrom(cmd.opts()) };
}

test('--stop takes one value per use and can repeat; the prompt after it stays the prompt', () => {
  const { args, params } = parse(['demo', '--stop', '.', 'Once upon a time', '--stop', '!']);
  assert.deepEqual(args, ['demo', 'Once upon a time']);
  assert.deepEqual(params.stop, ['.', '!']);
});

test('only the flags given become parameters (no default temperature)', () => {
  assert.deepEqual(parse(['demo', 'hi']).params, {});
  assert.deepEqual(parse(['demo', 'hi', '--temperature', '0.5', '--ignore-eos']).params, {
    temperature: 0.5,
    ignoreEos: true,
  });
});

test('invalid sampling flags are refused in one line naming the flag and what was expected', () => {
  const cases: [string[], string][] = [
    [['--temperature', '-1'], '--temperature -1: expected a number >= 0'],
    [['--top-p', '2'], '--top-p 2: expected a number in (0, 1]'],
    [['--top-k', '-3'], '--top-k -3: expected an integer >= -1 (0 or -1 = disabled)'],
    [['--max-tokens', '0'], '--max-tokens 0: expected an integer >= 1'],
    [['--max-tokens', '5', '--min-tokens', '9'], '--min-tokens 9: expected <= max_tokens (5)'],
    [['--presence-penalty', '3'], '--presence-penalty 3: expected a number in [-2, 2]'],
    [['--stop', ''], '--stop "": expected non-empty strings'],
    [['--seed', '1.5'], '--seed 1.5: expected an integer'],
  ];
  for (const [flags, message] of cases) {
    assert.throws(() => parse(['demo', 'hi', ...flags]), { name: 'UserError', message }, flags.join(' '));
  }
});

test("run's defaults: greedy unless the model sets a temperature; given flags always win", () => {
  assert.deepEqual(withRunDefaults({}, {}), { temperature: 0 });
  assert.deepEqual(withRunDefaults({}, { temperature: 0.7, topP: 0.8 }), {}, 'the engine applies the model defaults');
  assert.deepEqual(withRunDefaults({ temperature: 1.2 }, { temperature: 0.7 }), { temperature: 1.2 });
  assert.deepEqual(withRunDefaults({ temperature: 0.3, seed: 1 }, {}), { temperature: 0.3, seed: 1 });
});
