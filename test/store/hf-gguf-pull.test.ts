import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { listModels } from '../../src/store/catalog.ts';
import { pickGguf, quantOf } from '../../src/store/hf-gguf.ts';
import { pullModel } from '../../src/store/pull.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { FakeHub } from '../helpers/fake-hub.ts';
import { EMPTY_GGUF } from '../helpers/ollama-store.ts';

const gguf = () => Buffer.concat([EMPTY_GGUF, randomBytes(20_000)]);
const FILES: Record<string, Buffer> = {
  'tiny-Q4_K_M.gguf': gguf(),
  'tiny.Q8_0.gguf': gguf(),
  'tiny-f16.gguf': gguf(),
  'mmproj-tiny-f16.gguf': gguf(),
  'big-Q2_K-00001-of-00002.gguf': gguf(),
  'README.md': Buffer.from('# GGUF files'),
};

test('quantization names are read from GGUF file names as Ollama matches them', () => {
  assert.equal(quantOf('Llama-3.2-1B-Instruct-Q4_K_M.gguf'), 'Q4_K_M');
  assert.equal(quantOf('model.IQ3_XS.gguf'), 'IQ3_XS');
  assert.equal(quantOf('model-bf16.gguf'), 'BF16');
  assert.equal(quantOf('model.gguf'), null);
  const files = Object.keys(FILES);
  assert.equal(pickGguf(files, 'latest', 'x'), 'tiny-Q4_K_M.gguf');
  assert.equal(pickGguf(files, 'q8_0', 'x'), 'tiny.Q8_0.gguf');
  assert.equal(pickGguf(files, 'F16', 'x'), 'tiny-f16.gguf');
  assert.throws(
    () => pickGguf(files, 'Q5_K_M', 'x'),
    /^UserError: x: no Q5_K_M GGUF file; the repo has F16, Q4_K_M, Q8_0$/,
  );
  assert.throws(() => pickGguf(files, 'Q2_K', 'x'), /x: the Q2_K GGUF is split into parts, which pagoda cannot load/);
  assert.throws(() => pickGguf(['README.md'], 'latest', 'x'), /x: the repo has no GGUF model file/);
});

describe('hf.co/org/repo[:quant] pulls one GGUF file from the (imitated) Hub', () => {
  const hub = new FakeHub();
  let cache = '';
  let env: Record<string, string> = {};
  before(async () => {
    await hub.start();
    hub.repos.set('acme/tiny-GGUF', { commit: 'f'.repeat(40), files: FILES });
  });
  after(() => hub.stop());
  beforeEach(() => {
    if (cache) rmSync(cache, { recursive: true, force: true });
    cache = mkdtempSync(join(tmpdir(), 'pagoda-hf-gguf-'));
    env = {
      HF_ENDPOINT: hub.endpoint,
      HF_HUB_CACHE: join(cache, 'hf'),
      PAGODA_MODELS: join(cache, 'models'),
      OLLAMA_MODELS: join(cache, 'ollama'),
    };
    hub.requests.length = 0;
    hub.corrupt.clear();
  });

  test('the default quantization, then another; each resolves to its file in the cache', async () => {
    await pullModel('hf.co/acme/tiny-GGUF', { env });
    const fetched = hub.requests.filter((r) => r.method === 'GET' && r.url.startsWith('/cdn/')).map((r) => r.url);
    assert.deepEqual(fetched, ['/cdn/acme/tiny-GGUF/tiny-Q4_K_M.gguf']);
    for (const ref of ['hf.co/acme/tiny-GGUF', 'hf.co/acme/tiny-GGUF:q4_k_m']) {
      const m = resolveModel(ref, { env });
      assert.deepEqual([m.origin, m.format], ['hf-cache', 'gguf']);
      assert.deepEqual(readFileSync(m.path), FILES['tiny-Q4_K_M.gguf']);
    }
    assert.throws(() => resolveModel('hf.co/acme/tiny-GGUF:Q8_0', { env }), /not found/);
    const pulled = await pullModel('hf.co/acme/tiny-GGUF:Q8_0', { env });
    assert.equal(pulled.name, 'hf.co/acme/tiny-GGUF:Q8_0');
    assert.deepEqual(readFileSync(resolveModel('hf.co/acme/tiny-GGUF:Q8_0', { env }).path), FILES['tiny.Q8_0.gguf']);
    assert.deepEqual(
      listModels(env).map((m) => [m.name, m.origin]),
      [
        ['hf.co/acme/tiny-GGUF:Q4_K_M', 'hf-cache'],
        ['hf.co/acme/tiny-GGUF:Q8_0', 'hf-cache'],
      ],
    );
  });

  test('a quantization the repo lacks, or a corrupted download, is one line and stores nothing', async () => {
    await assert.rejects(
      pullModel('hf.co/acme/tiny-GGUF:Q6_K', { env }),
      /^UserError: hf.co\/acme\/tiny-GGUF:Q6_K: no Q6_K GGUF file; the repo has F16, Q4_K_M, Q8_0$/,
    );
    hub.corrupt.add('tiny-f16.gguf');
    await assert.rejects(pullModel('hf.co/acme/tiny-GGUF:f16', { env }), /tiny-f16\.gguf: sha256 mismatch/);
    assert.throws(() => resolveModel('hf.co/acme/tiny-GGUF:f16', { env }), /not found/);
    await assert.rejects(pullModel('hf.co/acme/absent-GGUF', { env }), /acme\/absent-GGUF: revision main not found/);
  });
});
