import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineOptionsFrom } from '../../src/cli/engine-options.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';

/** engineOptionsFrom with these variables set (and put back afterwards). */
function withEnv<T>(vars: Record<string, string>, body: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('--kv-compression and --kv-budget over PAGODA_KV_COMPRESSION and PAGODA_KV_BUDGET', () => {
  assert.equal(engineOptionsFrom({}).kvCompression, undefined);
  assert.deepEqual(engineOptionsFrom({ kvCompression: 'snapkv' }).kvCompression, { method: 'snapkv' });
  assert.deepEqual(engineOptionsFrom({ kvCompression: 'snapkv', kvBudget: '2048' }).kvCompression, {
    method: 'snapkv',
    budget: 2048,
  });
  const env = { PAGODA_KV_COMPRESSION: 'snapkv', PAGODA_KV_BUDGET: '0.25' };
  assert.deepEqual(settingsFromEnv(env), {
    device: undefined,
    cuda: {},
    cpuThreads: undefined,
    kvCompression: 'snapkv',
    kvBudget: '0.25',
  });
  withEnv(env, () => {
    assert.deepEqual(engineOptionsFrom({}).kvCompression, { method: 'snapkv', budget: 0.25 });
    assert.deepEqual(engineOptionsFrom({ kvBudget: '512' }).kvCompression, { method: 'snapkv', budget: 512 });
    assert.equal(engineOptionsFrom({ kvCompression: 'none', kvBudget: undefined }).kvCompression, undefined);
  });
});

test('a KV compression setting that cannot be honoured is one line naming where it came from', () => {
  assert.throws(
    () => engineOptionsFrom({ kvCompression: 'h2o' }),
    /^UserError: --kv-compression h2o: expected snapkv or none$/,
  );
  assert.throws(() => engineOptionsFrom({ kvBudget: '100' }), /--kv-budget 100: needs --kv-compression snapkv/);
  assert.throws(
    () => engineOptionsFrom({ kvCompression: 'snapkv', kvBudget: '1.5' }),
    /--kv-budget: 1.5 is not a KV budget/,
  );
  assert.throws(
    () => engineOptionsFrom({ kvCompression: 'snapkv', kvBudget: 'lots' }),
    /--kv-budget lots: expected a number/,
  );
  withEnv({ PAGODA_KV_COMPRESSION: 'snapkv', PAGODA_KV_BUDGET: '0' }, () => {
    assert.throws(() => engineOptionsFrom({}), /PAGODA_KV_BUDGET: 0 is not a KV budget/);
  });
});
