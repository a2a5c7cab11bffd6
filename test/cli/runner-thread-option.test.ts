import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { addEngineOptions, engineOptionsFrom } from '../../src/cli/engine-options.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';

/** The engine options of a command line, with PAGODA_RUNNER_THREAD set to `value` (and put back afterwards). */
function runnerThread(args: string[], value: string | undefined): boolean | undefined {
  const saved = process.env.PAGODA_RUNNER_THREAD;
  if (value === undefined) delete process.env.PAGODA_RUNNER_THREAD;
  else process.env.PAGODA_RUNNER_THREAD = value;
  try {
    const cmd = addEngineOptions(new Command('x').exitOverride()).parse(args, { from: 'user' });
    return engineOptionsFrom(cmd.opts()).runnerThread;
  } finally {
    if (saved === undefined) delete process.env.PAGODA_RUNNER_THREAD;
    else process.env.PAGODA_RUNNER_THREAD = saved;
  }
}

test('--runner-thread / --no-runner-thread over PAGODA_RUNNER_THREAD; neither leaves the default to the device', () => {
  assert.equal(runnerThread([], undefined), undefined);
  assert.equal(runnerThread(['--runner-thread'], undefined), true);
  assert.equal(runnerThread(['--no-runner-thread'], undefined), false);
  assert.equal(runnerThread([], '1'), true);
  assert.equal(runnerThread([], '0'), false);
  assert.equal(runnerThread(['--runner-thread'], '0'), true);
  assert.equal(runnerThread(['--no-runner-thread'], '1'), false);
});

test('PAGODA_RUNNER_THREAD other than 1 or 0 is refused in one line', () => {
  assert.equal(settingsFromEnv({ PAGODA_RUNNER_THREAD: '' }).runnerThread, undefined);
  assert.throws(
    () => settingsFromEnv({ PAGODA_RUNNER_THREAD: 'yes' }),
    /^UserError: PAGODA_RUNNER_THREAD yes: expected 1 or 0$/,
  );
});
