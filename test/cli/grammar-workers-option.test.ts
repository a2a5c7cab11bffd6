import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineOptionsFrom } from '../../src/cli/engine-options.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';

/** engineOptionsFrom with PAGODA_GRAMMAR_WORKERS set to `value` (and put back afterwards). */
function withVariable<T>(value: string | undefined, run: () => T): T {
  const saved = process.env.PAGODA_GRAMMAR_WORKERS;
  if (value === undefined) delete process.env.PAGODA_GRAMMAR_WORKERS;
  else process.env.PAGODA_GRAMMAR_WORKERS = value;
  try {
    return run();
  } finally {
    if (saved === undefined) delete process.env.PAGODA_GRAMMAR_WORKERS;
    else process.env.PAGODA_GRAMMAR_WORKERS = saved;
  }
}

test('--grammar-workers over PAGODA_GRAMMAR_WORKERS; neither leaves the default to the host', () => {
  assert.equal(settingsFromEnv({ PAGODA_GRAMMAR_WORKERS: '3' }).grammarWorkers, '3');
  withVariable(undefined, () => assert.equal(engineOptionsFrom({}).grammarWorkers, undefined));
  withVariable('6', () => {
    assert.equal(engineOptionsFrom({}).grammarWorkers, 6);
    assert.equal(engineOptionsFrom({ grammarWorkers: '3' }).grammarWorkers, 3);
  });
});

test('a grammar worker count that is not a positive integer names the flag or variable', () => {
  withVariable(undefined, () =>
    assert.throws(
      () => engineOptionsFrom({ grammarWorkers: '0' }),
      /^UserError: --grammar-workers 0: expected a positive integer$/,
    ),
  );
  withVariable('many', () => assert.throws(() => engineOptionsFrom({}), /PAGODA_GRAMMAR_WORKERS many/));
});
