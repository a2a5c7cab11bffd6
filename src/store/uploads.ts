import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** A partial upload's temporary file untouched this long was left by a server that stopped mid-upload. */
const PARTIAL_AGE_MS = 60 * 60 * 1000;
/** An upload no create has named in this long is abandoned (`ollama create` names its blob right after sending it). */
const UPLOAD_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes what a store's `uploads/` no longer needs, as the server starts: temporary files of uploads cut off by a
 * stop (untouched for an hour: one still being written, by another server on the same store, is touched every
 * moment) and uploads no model was made of within a day. Returns the names removed.
 */
export function sweepUploads(root: string, now = Date.now()): string[] {
  const dir = join(root, 'uploads');
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const file of files) {
    const partial = /^sha256-[0-9a-f]{64}\.upload-/.test(file);
    if (!partial && !/^sha256-[0-9a-f]{64}$/.test(file)) continue;
    const path = join(dir, file);
    try {
      if (now - statSync(path).mtimeMs < (partial ? PARTIAL_AGE_MS : UPLOAD_AGE_MS)) continue;
      rmSync(path, { force: true });
      removed.push(file);
    } catch {
      // Gone already (a create took it): nothing to sweep.
    }
  }
  return removed;
}
