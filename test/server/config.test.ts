import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration, parseHost, resolveServeConfig } from '../../src/server/config.ts';

test('defaults: localhost on Ollama port, CORS off, no key', () => {
  const c = resolveServeConfig({}, {});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 11434);
  assert.deepEqual(c.origins, []);
  assert.equal(c.apiKey, null);
  assert.equal(c.keepAliveMs, 300_000);
  assert.equal(c.flashAttention, 'auto');
  assert.equal(c.headersTimeoutMs, 30_000);
  assert.equal(c.requestTimeoutMs, 60_000);
  assert.equal(c.loadTimeoutMs, 300_000);
});

test('load timeout: flag, PAGODA_ and OLLAMA_LOAD_TIMEOUT, 0 for no limit, a bad value named', () => {
  assert.equal(resolveServeConfig({ loadTimeout: '30s' }, { PAGODA_LOAD_TIMEOUT: '1m' }).loadTimeoutMs, 30_000);
  assert.equal(resolveServeConfig({}, { OLLAMA_LOAD_TIMEOUT: '10m' }).loadTimeoutMs, 600_000);
  assert.equal(resolveServeConfig({ loadTimeout: '0' }, {}).loadTimeoutMs, 0);
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_LOAD_TIMEOUT: 'soon' }),
    /PAGODA_LOAD_TIMEOUT: "soon" is not a duration/,
  );
});

test('request timeouts: flags, variables, 0 or -1 for no limit, headers within the request', () => {
  const c = resolveServeConfig({ requestTimeout: '2m' }, { PAGODA_HEADERS_TIMEOUT: '5s' });
  assert.equal(c.requestTimeoutMs, 120_000);
  assert.equal(c.headersTimeoutMs, 5_000);
  assert.equal(resolveServeConfig({}, { OLLAMA_REQUEST_TIMEOUT: '90s' }).requestTimeoutMs, 90_000);
  assert.equal(resolveServeConfig({ requestTimeout: '0' }, {}).requestTimeoutMs, 0);
  assert.equal(resolveServeConfig({ requestTimeout: '-1', headersTimeout: '-1' }, {}).headersTimeoutMs, 0);
  assert.throws(
    () => resolveServeConfig({ headersTimeout: 'slow' }, {}),
    /--headers-timeout: "slow" is not a duration/,
  );
  assert.throws(
    () => resolveServeConfig({ headersTimeout: '2m', requestTimeout: '1m' }, {}),
    /--headers-timeout: the headers timeout \(120000 ms\) must be at most the request timeout \(60000 ms\)/,
  );
});

test('flags beat PAGODA_* which beat OLLAMA_* aliases', () => {
  const env = {
    PAGODA_NUM_PARALLEL: '3',
    OLLAMA_NUM_PARALLEL: '7',
    OLLAMA_MAX_QUEUE: '9',
    OLLAMA_HOST: '0.0.0.0:8080',
  };
  const c = resolveServeConfig({ maxQueue: '2' }, env);
  assert.equal(c.numParallel, 3);
  assert.equal(c.maxQueue, 2);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.port, 8080);
  assert.equal(resolveServeConfig({}, env).maxQueue, 9);
  assert.equal(resolveServeConfig({ port: '9000' }, env).port, 9000);
});

test('every documented variable is read, under both spellings', () => {
  for (const prefix of ['PAGODA_', 'OLLAMA_']) {
    const c = resolveServeConfig(
      {},
      {
        [`${prefix}FLASH_ATTENTION`]: '0',
        [`${prefix}KV_CACHE_TYPE`]: 'f16',
        [`${prefix}CONTEXT_LENGTH`]: '2048',
        [`${prefix}KEEP_ALIVE`]: '1h',
        [`${prefix}MAX_LOADED_MODELS`]: '2',
        [`${prefix}API_KEY`]: 'sekrit',
        [`${prefix}ORIGINS`]: 'http://localhost:*, https://app.example',
      },
    );
    assert.equal(c.flashAttention, 'off');
    assert.equal(c.kvCacheType, 'f16');
    assert.equal(c.contextLength, 2048);
    assert.equal(c.keepAliveMs, 3_600_000);
    assert.equal(c.maxLoadedModels, 2);
    assert.equal(c.apiKey, 'sekrit');
    assert.deepEqual(c.origins, ['http://localhost:*', 'https://app.example']);
  }
});

test("PAGODA_MODELS is pagoda's store; OLLAMA_MODELS names Ollama's own store, read beside it", () => {
  assert.equal(resolveServeConfig({}, { PAGODA_MODELS: '/srv/models' }).modelsDir, '/srv/models');
  const c = resolveServeConfig({}, { OLLAMA_MODELS: '/srv/ollama', PAGODA_HOME: '/srv/pagoda' });
  assert.equal(c.modelsDir, '/srv/pagoda/models');
});

test("Ollama's KV cache types are read as they are spelled there", () => {
  assert.equal(resolveServeConfig({}, { OLLAMA_KV_CACHE_TYPE: 'q8_0' }).kvCacheType, 'q8_0');
  assert.equal(resolveServeConfig({}, { OLLAMA_KV_CACHE_TYPE: 'Q4_0' }).kvCacheType, 'q4_0');
  assert.equal(resolveServeConfig({ kvCacheType: 'fp8' }, { OLLAMA_KV_CACHE_TYPE: 'q8_0' }).kvCacheType, 'fp8');
});

test('bad values are one-line errors naming the variable', () => {
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_NUM_PARALLEL: 'lots' }),
    /PAGODA_NUM_PARALLEL: "lots" is not an integer/,
  );
  assert.throws(() => resolveServeConfig({}, { OLLAMA_FLASH_ATTENTION: 'maybe' }), /OLLAMA_FLASH_ATTENTION/);
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_KV_CACHE_TYPE: 'q5_1' }),
    /PAGODA_KV_CACHE_TYPE: "q5_1" is not a KV cache type/,
  );
  assert.throws(() => resolveServeConfig({ port: '70000' }, {}), /--port/);
  assert.throws(() => resolveServeConfig({}, { PAGODA_KEEP_ALIVE: 'soon' }), /PAGODA_KEEP_ALIVE/);
});

test('durations and hosts as Ollama writes them', () => {
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration(30), 30_000);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration(-1), -1);
  assert.equal(parseDuration('-1m'), -1);
  assert.equal(parseDuration('later'), null);
  assert.deepEqual(parseHost('http://0.0.0.0:1234/', 'x'), { host: '0.0.0.0', port: 1234 });
  assert.deepEqual(parseHost(':99', 'x'), { host: '127.0.0.1', port: 99 });
  assert.deepEqual(parseHost('[::1]:5', 'x'), { host: '::1', port: 5 });
  // A bare IPv6 address is all host, as the client commands read it.
  assert.deepEqual(parseHost('2001:db8::1:80', 'x'), { host: '2001:db8::1:80', port: null });
  assert.deepEqual(parseHost('fd00:0:0:0:0:0:0:1', 'x'), { host: 'fd00:0:0:0:0:0:0:1', port: null });
  assert.deepEqual(parseHost('example.org', 'x'), { host: 'example.org', port: null });
});

test('a host that is no IP address or DNS name is refused up front, naming the flag or variable; IPv6 kept', () => {
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_HOST: '1.2.3.4:abc' }),
    /^UserError: PAGODA_HOST: "1\.2\.3\.4:abc" is not a host, host:port, :port or URL$/,
  );
  assert.throws(
    () => resolveServeConfig({ host: 'bad::host' }, { OLLAMA_HOST: 'fine' }),
    /^UserError: --host: "bad::host" is not a host, host:port, :port or URL$/,
  );
  assert.throws(() => resolveServeConfig({}, { OLLAMA_HOST: 'a b:1' }), /^UserError: OLLAMA_HOST: "a b:1"/);
  for (const [value, host, port] of [
    ['::1', '::1', 11434],
    ['[::1]:8080', '::1', 8080],
    ['http://[fe80::1]:9/', 'fe80::1', 9],
    ['my-host.example.', 'my-host.example.', 11434],
  ] as const) {
    const c = resolveServeConfig({ host: value }, {});
    assert.deepEqual([c.host, c.port, c.hostFrom], [host, port, '--host'], value);
  }
  assert.equal(resolveServeConfig({}, {}).hostFrom, null);
});

test('the web page is on unless --no-ui or PAGODA_NO_UI / OLLAMA_NO_UI says otherwise', () => {
  assert.equal(resolveServeConfig({}, {}).ui, true);
  // commander sets ui: true when --no-ui is absent, which must not hide the variable.
  assert.equal(resolveServeConfig({ ui: true }, { PAGODA_NO_UI: '1' }).ui, false);
  assert.equal(resolveServeConfig({ ui: false }, {}).ui, false);
  assert.equal(resolveServeConfig({}, { OLLAMA_NO_UI: 'true' }).ui, false);
  assert.equal(resolveServeConfig({}, { PAGODA_NO_UI: '0', OLLAMA_NO_UI: '1' }).ui, true);
  assert.throws(
    () => resolveServeConfig({}, { PAGODA_NO_UI: 'maybe' }),
    /^UserError: PAGODA_NO_UI: "maybe" is not one of 1, 0, true, false$/,
  );
});
