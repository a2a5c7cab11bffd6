import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../util/errors.ts';
import { type HubClient, hubError, request } from './hub-api.ts';

export interface BlobDownload {
  hub: HubClient;
  repo: string;
  file: string;
  url: string;
  /** Final path; the partial download lives beside it as `<dest>.incomplete`. */
  dest: string;
  size: number;
  etag: string;
  /** Called with the bytes on disk so far. */
  onProgress?: (completed: number) => void;
  signal?: AbortSignal;
  /** Extra attempts after an interrupted transfer, each resuming where the last stopped. */
  retries?: number;
  /** The refusal for an HTTP error status (default: the Hub's, see hubError). */
  statusError?: (status: number) => UserError;
}

/**
 * Downloads one file, resuming a partial `.incomplete` with a Range request, then checks its size and
 * the digest the ETag names (sha256 for LFS files, git's blob sha1 for small ones) before moving it in place.
 */
export async function downloadBlob(job: BlobDownload): Promise<void> {
  const partial = `${job.dest}.incomplete`;
  await mkdir(dirname(job.dest), { recursive: true });
  const retries = job.retries ?? 2;
  for (let attempt = 0; ; attempt++) {
    const have = await sizeOf(partial);
    if (have > job.size) await truncate(partial, 0);
    try {
      await fetchRemainder(job, partial, Math.min(have, job.size));
      break;
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      if (attempt >= retries) {
        throw new UserError(
          `download of ${job.repo}/${job.file} interrupted after ${err.bytes} of ${job.size} bytes (${err.reason}); run pull again to resume`,
        );
      }
    }
  }
  await verify(job, partial);
  await rename(partial, job.dest);
}

class Interrupted extends Error {
  constructor(
    readonly bytes: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

async function fetchRemainder(job: BlobDownload, partial: string, have: number): Promise<void> {
  if (have === job.size) return;
  const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
  let res: Response;
  try {
    res = await request(job.hub, job.url, { headers, signal: job.signal }, job.repo);
  } catch (err) {
    if (err instanceof UserError && have > 0) throw new Interrupted(have, err.message);
    throw err;
  }
  let offset = have;
  if (res.status === 200) offset = 0;
  else if (res.status === 416) {
    // Our partial no longer matches the remote file: start over.
    await truncate(partial, 0);
    await res.body?.cancel();
    throw new Interrupted(0, 'range not satisfiable');
  } else if (res.status === 206) {
    const start = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1]);
    if (start !== have) {
      await res.body?.cancel();
      throw new UserError(`${job.url}: asked for bytes from ${have}, the server sent from ${start}`);
    }
  } else {
    await res.body?.cancel();
    throw job.statusError?.(res.status) ?? hubError(job.hub, res.status, job.repo, job.file);
  }
  const handle = await open(partial, offset === 0 ? 'w' : 'a');
  try {
    job.onProgress?.(offset);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await handle.write(chunk);
      offset += chunk.byteLength;
      job.onProgress?.(offset);
    }
  } catch (err) {
    if (job.signal?.aborted) throw err;
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new Interrupted(offset, cause?.code ?? (err as Error).message);
  } finally {
    await handle.close();
  }
  if (offset < job.size) throw new Interrupted(offset, 'connection closed early');
}

async function verify(job: BlobDownload, partial: string): Promise<void> {
  const size = await sizeOf(partial);
  const fail = async (what: string): Promise<never> => {
    await rm(partial, { force: true });
    throw new UserError(`${job.repo}/${job.file}: ${what}; the download was deleted, run pull again`);
  };
  if (size !== job.size) await fail(`size mismatch: expected ${job.size} bytes, got ${size}`);
  const check = digestFor(job.etag, size);
  if (!check) return;
  for await (const chunk of createReadStream(partial)) check.hash.update(chunk as Buffer);
  const actual = check.hash.digest('hex');
  if (actual !== job.etag) await fail(`${check.kind} mismatch: expected ${job.etag}, got ${actual}`);
}

/** The digest an ETag stands for: 64 hex = sha256 (LFS), 40 hex = git blob sha1; otherwise none to check. */
function digestFor(etag: string, size: number): { kind: string; hash: Hash } | null {
  if (/^[0-9a-f]{64}$/.test(etag)) return { kind: 'sha256', hash: createHash('sha256') };
  if (/^[0-9a-f]{40}$/.test(etag)) return { kind: 'git sha1', hash: createHash('sha1').update(`blob ${size}\0`) };
  return null;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
