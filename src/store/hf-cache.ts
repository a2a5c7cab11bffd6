import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * The Hugging Face hub cache layout (shared with huggingface_hub and transformers):
 *   models--org--repo/blobs/<etag>                    file contents, named by the Hub's ETag
 *   models--org--repo/snapshots/<commit>/<file>       symlinks into blobs/
 *   models--org--repo/refs/<revision>                 the commit a branch or tag pointed at
 */

export interface CachedSnapshot {
  repo: string;
  commit: string;
  dir: string;
}

export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split('/').join('--')}`);
}

/** The snapshot a revision (branch, tag or commit) points at, when it holds a model (config.json). */
export function findSnapshot(cacheDir: string, repo: string, revision = 'main'): CachedSnapshot | null {
  const base = repoCacheDir(cacheDir, repo);
  let commit = revision;
  if (!isCommitHash(revision)) {
    try {
      commit = readFileSync(join(base, 'refs', revision), 'utf8').trim();
    } catch {
      return null;
    }
  }
  const dir = snapshotDir(cacheDir, repo, commit);
  return isCommitHash(commit) && existsSync(join(dir, 'config.json')) ? { repo, commit, dir } : null;
}

/** Every cached model repo whose `main` snapshot holds a model. */
export function listCachedModels(cacheDir: string): CachedSnapshot[] {
  let entries: string[];
  try {
    entries = readdirSync(cacheDir);
  } catch {
    return [];
  }
  const out: CachedSnapshot[] = [];
  for (const entry of entries.sort()) {
    const parts = entry.split('--');
    if (parts[0] !== 'models' || parts.length !== 3) continue;
    const snapshot = findSnapshot(cacheDir, `${parts[1]}/${parts[2]}`);
    if (snapshot) out.push(snapshot);
  }
  return out;
}

export function snapshotDir(cacheDir: string, repo: string, commit: string): string {
  return join(repoCacheDir(cacheDir, repo), 'snapshots', commit);
}

export function blobPath(cacheDir: string, repo: string, etag: string): string {
  return join(repoCacheDir(cacheDir, repo), 'blobs', etag);
}

/** Points snapshots/<commit>/<file> at its blob with a relative symlink (a copy where links are not allowed). */
export function linkSnapshotFile(cacheDir: string, repo: string, commit: string, file: string, etag: string): string {
  const target = join(snapshotDir(cacheDir, repo, commit), ...file.split('/'));
  const blob = blobPath(cacheDir, repo, etag);
  mkdirSync(dirname(target), { recursive: true });
  rmSync(target, { force: true });
  try {
    symlinkSync(relative(dirname(target), blob), target);
  } catch {
    copyFileSync(blob, target);
  }
  return target;
}

export function writeRef(cacheDir: string, repo: string, revision: string, commit: string): void {
  if (isCommitHash(revision)) return;
  const file = join(repoCacheDir(cacheDir, repo), 'refs', ...revision.split('/'));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, commit);
}

/** Bytes of the weight files in a model folder (following snapshot symlinks). */
export function weightsSize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir)) {
    if (entry.endsWith('.safetensors') || entry.endsWith('.gguf')) total += statSync(join(dir, entry)).size;
  }
  return total;
}
