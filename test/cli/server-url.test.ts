import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverUrl } from '../../src/cli/server-url.ts';
import { pagodaSync } from '../helpers/cli.ts';

test('PAGODA_HOST (else OLLAMA_HOST) as Ollama reads it: host, host:port, :port, an IPv6 address or a URL', () => {
  assert.equal(serverUrl({}), 'http://127.0.0.1:11434');
  assert.equal(serverUrl({ PAGODA_HOST: 'example.org' }), 'http://example.org:11434');
  assert.equal(serverUrl({ PAGODA_HOST: ':8080', OLLAMA_HOST: 'ignored:1' }), 'http://127.0.0.1:8080');
  assert.equal(serverUrl({ OLLAMA_HOST: '0.0.0.0:5' }), 'http://127.0.0.1:5');
  assert.equal(serverUrl({ PAGODA_HOST: '[::1]:8080' }), 'http://[::1]:8080');
  assert.equal(serverUrl({ PAGODA_HOST: '::1' }), 'http://[::1]:11434');
  assert.equal(serverUrl({ PAGODA_HOST: '2001:db8::1:80' }), 'http://[2001:db8::1:80]:11434');
  assert.equal(serverUrl({ PAGODA_HOST: '[::1]' }), 'http://[::1]:11434', "a bracket's colons are no port");
  // A URL without a port has its scheme's, as Ollama reads it.
  assert.equal(serverUrl({ PAGODA_HOST: 'http://[::1]' }), 'http://[::1]');
  assert.equal(serverUrl({ PAGODA_HOST: 'https://models.example' }), 'https://models.example');
  assert.equal(serverUrl({ PAGODA_HOST: 'http://models.example:8080/' }), 'http://models.example:8080');
  assert.equal(serverUrl({ PAGODA_HOST: 'https://models.example:443' }), 'https://models.example');
});

test('a PAGODA_HOST or OLLAMA_HOST that is no address is a one-line error naming the variable read and its value', () => {
  assert.throws(
    () => serverUrl({ PAGODA_HOST: 'bad:99999', OLLAMA_HOST: 'fine' }),
    /^UserError: PAGODA_HOST: "bad:99999" is not a host, host:port, :port or URL$/,
  );
  assert.throws(
    () => serverUrl({ OLLAMA_HOST: '1.2.3.4:abc' }),
    /^UserError: OLLAMA_HOST: "1\.2\.3\.4:abc" is not a host, host:port, :port or URL$/,
  );
  const ps = pagodaSync(['ps'], {
    env: { ...process.env, PAGODA_HOST: 'bad:99999' },
  });
  assert.equal(ps.status, 1);
  assert.equal(ps.stderr, 'error: PAGODA_HOST: "bad:99999" is not a host, host:port, :port or URL\n');
});
