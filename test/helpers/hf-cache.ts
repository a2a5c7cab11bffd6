import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blobPath, linkSnapshotFile, writeRef } from '../../src/store/hf-cache.ts';

/**
 * Puts files into a Hugging Face cache folder the way huggingface_hub lays them out (blobs named by
 * digest, snapshot symlinks, refs/main) and returns the snapshot folder.
 */
export function addToHubCache(
  cacheDir: string,
  repo: string,
  files: Record<string, Buffer | string>,
  commit?: string,
): string {
  const sha = commit ?? createHash('sha1').update(repo).digest('hex');
  let dir = '';
  for (const [name, content] of Object.entries(files)) {
    const etag = createHash('sha256').update(content).digest('hex');
    const blob = blobPath(cacheDir, repo, etag);
    mkdirSync(join(blob, '..'), { recursive: true });
    writeFileSync(blob, content);
    dir = join(linkSnapshotFile(cacheDir, repo, sha, name, etag), '..');
  }
  writeRef(cacheDir, repo, 'main', sha);
  return dir;
}

/** Every file of a model folder, for addToHubCache. */
export function readModelFolder(dir: string): Record<string, Buffer> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}
