import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { findSnapshot, repoCacheDir } from '../../src/store/hf-cache.ts';
import { type PullProgress, pullFromHub } from '../../src/store/hub.ts';
import { FakeHub } from '../helpers/fake-hub.ts';

const COMMIT = 'a'.repeat(40);
const shard1 = randomBytes(300_000);
const shard2 = randomBytes(200_000);
const config = Buffer.from(JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
const index = Buffer.from(
  JSON.stringify({
    metadata: { total_size: shard1.length + shard2.length },
    weight_map: {
      'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
      'model.norm.weight': 'model-00002-of-00002.safetensors',
      'lm_head.weight': 'model-00002-of-00002.safetensors',
    },
  }),
);
const shardedFiles = {
  'config.json': config,
  'generation_config.json': Buffer.from('{"eos_token_id": 2}'),
  'tokenizer.json': Buffer.from('{"model": {"type": "BPE"}}'),
  'tokenizer_config.json': Buffer.from('{}'),
  'model.safetensors.index.json': index,
  'model-00001-of-00002.safetensors': shard1,
  'model-00002-of-00002.safetensors': shard2,
  'pytorch_model.bin': randomBytes(5000),
  'README.md': Buffer.from('# a model'),
};

describe('pull from a local imitation of the Hugging Face Hub', () => {
  const hub = new FakeHub();
  let cache = '';
  let env: Record<string, string> = {};

  before(async () => {
    await hub.start();
    hub.repos.set('acme/sharded', { commit: COMMIT, files: shardedFiles });
    hub.repos.set('acme/single', {
      commit: 'b'.repeat(40),
      files: { 'config.json': config, 'model.safetensors': randomBytes(50_000) },
    });
    hub.repos.set('acme/private', { commit: 'c'.repeat(40), files: { 'config.json': config }, token: 'hf_secret' });
    hub.repos.set('acme/no-weights', { commit: 'd'.repeat(40), files: { 'config.json': config } });
  });
  after(() => hub.stop());
  beforeEach(() => {
    if (cache) rmSync(cache, { recursive: true, force: true });
    cache = mkdtempSync(join(tmpdir(), 'pagoda-hub-'));
    env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache };
    hub.requests.length = 0;
    hub.cutAfter.clear();
    hub.corrupt.clear();
  });

  test('a sharded model lands in the HF cache layout with verified blobs', async () => {
    const events: PullProgress[] = [];
    const snap = await pullFromHub('acme/sharded', { env, onProgress: (e) => events.push(e) });
    assert.equal(snap.commit, COMMIT);
    assert.equal(snap.dir, join(repoCacheDir(cache, 'acme/sharded'), 'snapshots', COMMIT));
    const got = readdirSync(snap.dir).sort();
    assert.deepEqual(got, [
      'config.json',
      'generation_config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const f of got) {
      assert.ok(lstatSync(join(snap.dir, f)).isSymbolicLink(), `${f} is a link into blobs/`);
      assert.deepEqual(readFileSync(join(snap.dir, f)), shardedFiles[f as keyof typeof shardedFiles]);
    }
    // Blobs are named by ETag: sha256 for LFS files, git blob sha1 for small ones.
    const blobs = readdirSync(join(repoCacheDir(cache, 'acme/sharded'), 'blobs')).sort();
    assert.ok(blobs.includes(FakeHub.etagOf(shard1, true)));
    assert.ok(blobs.includes(FakeHub.etagOf(config, false)));
    assert.equal(readFileSync(join(repoCacheDir(cache, 'acme/sharded'), 'refs', 'main'), 'utf8'), COMMIT);
    assert.deepEqual(findSnapshot(cache, 'acme/sharded'), snap);
    // Progress follows Ollama's pull stream.
    assert.equal(events[0]!.status, 'pulling manifest');
    assert.equal(events.at(-1)!.status, 'success');
    const shardDone = events.find(
      (e) => e.status === 'pulling model-00001-of-00002.safetensors' && e.completed === e.total,
    );
    assert.equal(shardDone?.digest, `sha256:${FakeHub.etagOf(shard1, true)}`);
    assert.equal(shardDone?.total, shard1.length);
    assert.ok(!hub.requests.some((r) => r.url.endsWith('pytorch_model.bin') || r.url.endsWith('README.md')));
  });

  test('a second pull downloads nothing', async () => {
    await pullFromHub('acme/sharded', { env });
    hub.requests.length = 0;
    await pullFromHub('acme/sharded', { env });
    assert.ok(hub.requests.every((r) => r.method === 'HEAD' || r.url.startsWith('/api/')));
  });

  test('an interrupted download resumes with a Range request', async () => {
    hub.cutAfter.set('model-00001-of-00002.safetensors', [100_000]);
    const snap = await pullFromHub('acme/sharded', { env, concurrency: 1 });
    assert.deepEqual(readFileSync(join(snap.dir, 'model-00001-of-00002.safetensors')), shard1);
    // LFS files are fetched from the CDN the resolve URL redirects to.
    const gets = hub.requests.filter((r) => r.url.startsWith('/cdn/') && r.url.includes('model-00001-of-00002'));
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 100_000, gets[1]!.range);
  });

  test('a pull that fails mid-file keeps the partial file and the next pull resumes it', async () => {
    hub.cutAfter.set('model.safetensors', [10_000, 10_000, 10_000]);
    // Each attempt resumes where the last stopped; how much of a cut transfer arrives depends on the socket,
    // so the count is read from the message and checked against the partial file on disk.
    let reported = 0;
    await assert.rejects(pullFromHub('acme/single', { env }), (err: Error) => {
      const m =
        /download of acme\/single\/model.safetensors interrupted after (\d+) of 50000 bytes .*run pull again to resume/.exec(
          err.message,
        );
      assert.ok(m, err.message);
      reported = Number(m[1]);
      return true;
    });
    assert.ok(reported > 0 && reported <= 30_000, String(reported));
    const blobs = join(repoCacheDir(cache, 'acme/single'), 'blobs');
    const partial = readdirSync(blobs).find((f) => f.endsWith('.incomplete'))!;
    assert.equal(readFileSync(join(blobs, partial)).length, reported);
    hub.requests.length = 0;
    const snap = await pullFromHub('acme/single', { env });
    assert.deepEqual(
      readFileSync(join(snap.dir, 'model.safetensors')),
      hub.repos.get('acme/single')!.files['model.safetensors'],
    );
    assert.deepEqual(
      hub.requests.filter((r) => r.url.startsWith('/cdn/') && r.url.includes('model.safetensors')).map((r) => r.range),
      [`bytes=${reported}-`],
    );
  });

  test('a corrupted file fails its sha256 check and is deleted', async () => {
    hub.corrupt.add('model.safetensors');
    await assert.rejects(
      pullFromHub('acme/single', { env }),
      /model.safetensors: sha256 mismatch: expected [0-9a-f]{64}, got/,
    );
    const blobs = join(repoCacheDir(cache, 'acme/single'), 'blobs');
    assert.ok(
      !readdirSync(blobs).some((f) =>
        f.includes(FakeHub.etagOf(hub.repos.get('acme/single')!.files['model.safetensors']!, true)),
      ),
    );
  });

  test('a corrupted small file fails its git sha1 check', async () => {
    hub.corrupt.add('config.json');
    await assert.rejects(pullFromHub('acme/single', { env }), /config.json: git sha1 mismatch/);
  });

  test('404 and 401 say what happened and what to do', async () => {
    await assert.rejects(pullFromHub('acme/missing', { env }), {
      message: `acme/missing: revision main not found on the Hugging Face Hub at ${hub.endpoint} (404)`,
    });
    await assert.rejects(pullFromHub('acme/private', { env }), /401 Unauthorized for acme\/private: .*set HF_TOKEN/);
    await assert.rejects(
      pullFromHub('acme/private', { env: { ...env, HF_TOKEN: 'wrong' } }),
      /refused HF_TOKEN for acme\/private \(401/,
    );
    await assert.rejects(
      pullFromHub('acme/no-weights', { env: { ...env } }),
      /acme\/no-weights has no safetensors weights/,
    );
  });

  test('HF_TOKEN is sent as a bearer token', async () => {
    hub.repos.get('acme/private')!.files['model.safetensors'] = randomBytes(2000);
    const snap = await pullFromHub('acme/private', { env: { ...env, HF_TOKEN: 'hf_secret' } });
    assert.ok(existsSync(join(snap.dir, 'model.safetensors')));
    assert.ok(
      hub.requests.filter((r) => !r.url.startsWith('/cdn/')).every((r) => r.authorization === 'Bearer hf_secret'),
    );
  });

  test('unreachable Hub and bad names are one-line errors', async () => {
    await assert.rejects(
      pullFromHub('acme/x', { env: { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' } }),
      /cannot reach the Hugging Face Hub at http:\/\/127.0.0.1:9/,
    );
    await assert.rejects(pullFromHub('llama3', { env }), /give a repo id like org\/repo/);
    await assert.rejects(pullFromHub('../etc/passwd', { env }), /invalid model name/);
    writeFileSync(join(cache, 'marker'), '');
  });
});
