import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { removeModel } from '../../src/store/create.ts';
import type { PullProgress } from '../../src/store/hub.ts';
import { pullFromRegistry } from '../../src/store/ollama/pull.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { FakeRegistry } from '../helpers/fake-registry.ts';
import { EMPTY_GGUF, type FakeLayer, ollamaManifest, sha256 } from '../helpers/ollama-store.ts';

const weights = Buffer.concat([EMPTY_GGUF, randomBytes(300_000)]);
const TEMPLATE = '{{ .Prompt }}';
const LAYERS: FakeLayer[] = [
  { kind: 'model', content: weights },
  { kind: 'template', content: TEMPLATE },
  { kind: 'system', content: 'Be brief.' },
  { kind: 'params', content: '{"stop":["<|eot_id|>"],"num_keep":4}' },
  { kind: 'license', content: 'A license' },
];
const blobName = (content: Buffer | string) => sha256(content).replace(':', '-');

describe('pull from a local imitation of an Ollama-compatible registry', () => {
  const registry = new FakeRegistry();
  let root = '';
  let env: Record<string, string> = {};

  before(async () => {
    await registry.start();
    registry.add('library/llama3.2:latest', LAYERS);
    registry.add('library/llama3.2:1b', LAYERS.slice(0, 2));
    registry.add('library/vision:latest', [...LAYERS, { kind: 'projector', content: 'p' }]);
    registry.add('library/not-gguf:latest', [{ kind: 'model', content: 'GGML not gguf' }]);
    const hostile = ollamaManifest(LAYERS.slice(0, 1));
    hostile.layers[0]!.digest = 'sha256:../../../outside';
    registry.models.set('library/hostile:latest', JSON.stringify(hostile));
  });
  after(() => registry.stop());
  beforeEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    root = mkdtempSync(join(tmpdir(), 'pagoda-registry-'));
    env = { PAGODA_REGISTRY: registry.endpoint, PAGODA_MODELS: join(root, 'models'), OLLAMA_MODELS: join(root, 'o') };
    registry.requests.length = 0;
    registry.cutAfter.clear();
    registry.corrupt.clear();
  });

  test("a model lands in pagoda's store as verified blobs and a manifest over the GGUF blob", async () => {
    const events: PullProgress[] = [];
    const stored = await pullFromRegistry('llama3.2', { env, onProgress: (e) => events.push(e) });
    assert.equal(stored.name, 'llama3.2:latest');
    assert.deepEqual(
      readdirSync(join(env.PAGODA_MODELS!, 'blobs')).sort(),
      LAYERS.map((l) => blobName(l.content)).sort(),
    );
    const m = resolveModel('llama3.2', { env });
    assert.deepEqual([m.origin, m.format], ['store', 'gguf']);
    assert.equal(m.path, join(env.PAGODA_MODELS!, 'blobs', blobName(weights)));
    assert.equal(m.manifest?.template, TEMPLATE);
    assert.equal(m.manifest?.system, 'Be brief.');
    assert.deepEqual(m.manifest?.parameters, { stop: ['<|eot_id|>'] });
    assert.deepEqual(m.manifest?.license, ['A license']);
    assert.equal(m.manifest?.from, `${new URL(registry.endpoint).host}/library/llama3.2:latest`);
    const statuses = events.map((e) => e.status);
    assert.equal(statuses[0], 'pulling manifest');
    assert.ok(statuses.includes(`pulling ${sha256(weights).slice(7, 19)}`));
    assert.deepEqual(statuses.slice(-3), ['verifying sha256 digest', 'writing manifest', 'success']);
    const done = events.find((e) => e.digest === sha256(weights) && e.completed === weights.length);
    assert.equal(done?.total, weights.length);

    // Pulled again: only the manifest is fetched; another tag shares the blobs it has in common.
    registry.requests.length = 0;
    await pullFromRegistry('llama3.2:latest', { env });
    await pullFromRegistry('llama3.2:1b', { env });
    assert.deepEqual(
      registry.requests.map((r) => r.url),
      ['/v2/library/llama3.2/manifests/latest', '/v2/library/llama3.2/manifests/1b'],
    );
    assert.equal(resolveModel('llama3.2:1b', { env }).path, m.path);

    // rm deletes the blobs no manifest names any more: the weights stay while another tag uses them.
    removeModel('llama3.2', env);
    assert.deepEqual(readdirSync(join(env.PAGODA_MODELS!, 'blobs')), [blobName(weights)]);
    removeModel('llama3.2:1b', env);
    assert.deepEqual(readdirSync(join(env.PAGODA_MODELS!, 'blobs')), []);
  });

  test('an interrupted blob resumes with a Range request, within one pull or the next', async () => {
    registry.cutAfter.set(sha256(weights), [100_000]);
    await pullFromRegistry('llama3.2', { env });
    const ranges = registry.requests.filter((r) => r.range && r.url.startsWith('/cdn/')).map((r) => r.range);
    assert.deepEqual(ranges, ['bytes=100000-']);
    rmSync(root, { recursive: true, force: true });

    registry.cutAfter.set(sha256(weights), [50_000, 20_000, 30_000]);
    await assert.rejects(
      pullFromRegistry('llama3.2', { env }),
      /interrupted after 100000 of 300024 bytes \(.*\); run pull again to resume$/,
    );
    assert.throws(() => resolveModel('llama3.2', { env }), /not found/);
    registry.requests.length = 0;
    await pullFromRegistry('llama3.2', { env });
    assert.deepEqual(
      registry.requests.filter((r) => r.range && r.url.startsWith('/cdn/')).map((r) => r.range),
      ['bytes=100000-'],
    );
    assert.equal(resolveModel('llama3.2', { env }).origin, 'store');
  });

  test('a blob that does not match its digest is deleted and nothing is stored', async () => {
    registry.corrupt.add(sha256(weights));
    await assert.rejects(
      pullFromRegistry('llama3.2', { env }),
      new RegExp(
        `library/llama3.2/${sha256(weights)}: sha256 mismatch: expected ${sha256(weights).slice(7)}, got [0-9a-f]{64}; the download was deleted, run pull again`,
      ),
    );
    assert.ok(!readdirSync(join(env.PAGODA_MODELS!, 'blobs')).some((f) => f.startsWith(blobName(weights))));
    assert.throws(() => resolveModel('llama3.2', { env }), /not found/);
  });

  test('refusals are one line and write nothing outside the store', async () => {
    const cases: [string, RegExp][] = [
      ['absent', new RegExp(`^absent:latest: manifest not found in the registry at ${registry.endpoint} \\(404\\)$`)],
      ['hostile', /hostile\/manifests\/latest: not a model manifest \(layers\.0\.digest: expected "sha256:"/],
      ['vision', /^vision:latest from .*: has a vision projector \(application\/vnd\.ollama\.image\.projector\)/],
      ['not-gguf', /^not-gguf:latest from .*: model blob sha256:[0-9a-f]{64} is not a GGUF file \(wrong magic\)$/],
      ['acme/tiny', /^cannot pull "acme\/tiny" from the registry: give a library name/],
    ];
    for (const [name, reason] of cases) {
      registry.requests.length = 0;
      await assert.rejects(pullFromRegistry(name, { env }), (err: Error) => {
        assert.match(err.message, reason);
        assert.ok(!err.message.includes('\n'));
        return true;
      });
      assert.ok(
        !registry.requests.some((r) => r.url.includes('blobs') && name === 'vision'),
        'refused before download',
      );
      assert.throws(() => resolveModel(name, { env }), /not found/);
    }
    assert.deepEqual(readdirSync(root).sort(), existsSync(join(root, 'models')) ? ['models'] : []);
  });
});
