import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../util/errors.ts';
import { downloadBlob } from './download.ts';
import { blobPath, type CachedSnapshot, linkSnapshotFile, snapshotDir, writeRef } from './hf-cache.ts';
import { getFileMeta, getRepoInfo, type HubClient, resolveUrl } from './hub-api.ts';
import { hubCacheDir, hubEndpoint, hubToken } from './locations.ts';
import { isHubRepoId, parseModelName } from './names.ts';

/** One progress event, in the shape of Ollama's pull stream. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullOptions {
  env?: Record<string, string | undefined>;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Files downloaded at once. */
  concurrency?: number;
}

/** Files besides the weights that loading a model reads (absent ones are skipped). */
const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
];
const SHARD_INDEX = 'model.safetensors.index.json';
const PROGRESS_INTERVAL_MS = 100;

export function hubClientFromEnv(env: Record<string, string | undefined>, fetchImpl: typeof fetch = fetch): HubClient {
  return { endpoint: hubEndpoint(env), token: hubToken(env), fetch: fetchImpl };
}

/**
 * `pagoda pull org/repo[:revision]`: downloads what a model needs into the HF cache layout
 * (resuming partial files, verifying sizes and digests) and returns the snapshot folder.
 */
export async function pullFromHub(ref: string, opts: PullOptions = {}): Promise<CachedSnapshot> {
  const env = opts.env ?? process.env;
  const name = parseModelName(ref);
  if (!isHubRepoId(name.repo)) {
    throw new UserError(`cannot pull "${ref}": pagoda pulls from the Hugging Face Hub, give a repo id like org/repo`);
  }
  const repo = name.repo;
  const revision = name.tag === 'latest' ? 'main' : name.tag;
  const hub = hubClientFromEnv(env, opts.fetch);
  const cacheDir = hubCacheDir(env);
  const emit = opts.onProgress ?? (() => {});

  emit({ status: 'pulling manifest' });
  const info = await getRepoInfo(hub, repo, revision);
  const present = new Set(info.files);
  if (!present.has('config.json')) throw new UserError(`${repo} has no config.json: not a Transformers model repo`);
  const fetchFile = (file: string) => fetchOne(hub, cacheDir, repo, info.commit, file, emit, opts);

  const small = MODEL_FILES.filter((f) => present.has(f));
  let weights: string[];
  if (present.has(SHARD_INDEX)) {
    const indexPath = await fetchFile(SHARD_INDEX);
    weights = shardsOf(indexPath, repo);
    const missing = weights.filter((w) => !present.has(w));
    if (missing.length)
      throw new UserError(`${repo}: ${SHARD_INDEX} names shards the repo lacks: ${missing.join(', ')}`);
  } else {
    weights = info.files.filter((f) => f.endsWith('.safetensors') && !f.includes('/'));
  }
  if (weights.length === 0) {
    throw new UserError(
      `${repo} has no safetensors weights (pagoda reads safetensors); files: ${info.files.join(', ')}`,
    );
  }
  await runLimited([...small, ...weights], opts.concurrency ?? 4, fetchFile);

  emit({ status: 'verifying sha256 digest' });
  emit({ status: 'writing manifest' });
  writeRef(cacheDir, repo, revision, info.commit);
  emit({ status: 'success' });
  return { repo, commit: info.commit, dir: snapshotDir(cacheDir, repo, info.commit) };
}

/** Downloads one file of a repo at a commit into the cache (unless its blob is there) and links it in the snapshot. */
export async function fetchOne(
  hub: HubClient,
  cacheDir: string,
  repo: string,
  commit: string,
  file: string,
  emit: (e: PullProgress) => void,
  opts: PullOptions,
): Promise<string> {
  const meta = await getFileMeta(hub, repo, commit, file);
  const digest = /^[0-9a-f]{64}$/.test(meta.etag) ? `sha256:${meta.etag}` : meta.etag;
  const status = `pulling ${file}`;
  const dest = blobPath(cacheDir, repo, meta.etag);
  if (!existsSync(dest)) {
    let last = 0;
    await downloadBlob({
      hub,
      repo,
      file,
      url: resolveUrl(hub, repo, commit, file),
      dest,
      size: meta.size,
      etag: meta.etag,
      signal: opts.signal,
      onProgress: (completed) => {
        const now = Date.now();
        if (now - last < PROGRESS_INTERVAL_MS) return;
        last = now;
        emit({ status, digest, total: meta.size, completed });
      },
    });
  }
  emit({ status, digest, total: meta.size, completed: meta.size });
  return linkSnapshotFile(cacheDir, repo, commit, file, meta.etag);
}

function shardsOf(indexPath: string, repo: string): string[] {
  try {
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    return [...new Set(Object.values(index.weight_map))].sort();
  } catch (err) {
    throw new UserError(`${repo}/${SHARD_INDEX}: not a valid shard index (${(err as Error).message})`);
  }
}

/** Runs `task` over `items` with at most `limit` in flight; the first failure rejects. */
async function runLimited<T>(items: T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
