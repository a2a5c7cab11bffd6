import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { blobFileName } from './ollama/manifest.ts';

/**
 * A model folder made of blobs: `ollama create` FROM a safetensors folder uploads each file and names them in
 * /api/create's `files` (base name -> digest). The store keeps the files as blobs, like a GGUF's, and the model loads
 * from `folders/<id>`: links named as uploaded, to `blobs/`. The id is the file list's hash, so two models made of the
 * same files share one folder, and the folder can be rebuilt from the manifest alone.
 */

/** A file name a blob folder may hold: a plain name (Ollama sends base names), no path and no leading dot. */
export const FOLDER_FILE = /^(?!\.)[\w.-]{1,200}$/;

/** The folder's name under `folders/`: a hash of the file list (names and digests). */
export function blobFolderId(files: Record<string, string>): string {
  return createHash('sha256')
    .update(JSON.stringify(sortedFiles(files)))
    .digest('hex')
    .slice(0, 32);
}

/**
 * The folder of `files` under the store `root`, linked on first use. Their names are FOLDER_FILE's (the manifest
 * schema and create.ts check them before a folder is made).
 */
export function blobFolderPath(root: string, files: Record<string, string>): string {
  const dir = join(root, 'folders', blobFolderId(files));
  if (existsSync(dir)) return dir;
  // Linked beside it and renamed into place, so a folder that exists is whole.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  for (const [name, digest] of sortedFiles(files)) {
    symlinkSync(join('..', '..', 'blobs', blobFileName(digest)), join(partial, name));
  }
  try {
    renameSync(partial, dir);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    if (!existsSync(dir)) throw err;
  }
  return dir;
}

const sortedFiles = (files: Record<string, string>) =>
  Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
