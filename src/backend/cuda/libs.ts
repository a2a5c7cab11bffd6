import { existsSync } from 'node:fs';
import { join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';

/** Why CUDA cannot be used, and what the user can do about it. */
export class CudaUnavailable extends Error {
  override readonly name = 'CudaUnavailable';
  constructor(
    readonly reason: string,
    readonly fix: string,
  ) {
    super(`${reason}. ${fix}`);
  }
}

/**
 * Folders where the CUDA libraries usually live, besides the dynamic loader's own search path: those of the toolkit
 * `roots` (CudaSettings.cudaRoots) first.
 */
export function cudaLibraryDirs(roots: readonly string[]): string[] {
  const dirs = roots.flatMap((root) => [join(root, 'lib64'), join(root, 'lib')]);
  dirs.push(
    '/usr/local/cuda/lib64',
    '/usr/local/cuda/lib',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/local/nvidia/lib64',
    '/usr/lib64',
  );
  return [...new Set(dirs)];
}

/**
 * Loads the first library of `names` found: first by bare name (LD_LIBRARY_PATH, ldconfig), then in the folders of
 * the toolkit `roots` and the usual CUDA folders. Throws a CudaUnavailable naming every name and path tried.
 */
export function loadCudaLibrary(
  names: readonly string[],
  what: string,
  fix: string,
  roots: readonly string[],
): LibraryHandle {
  const tried: string[] = [];
  for (const name of names) {
    try {
      return koffi.load(name);
    } catch {
      tried.push(name);
    }
  }
  for (const dir of cudaLibraryDirs(roots)) {
    for (const name of names) {
      const path = join(dir, name);
      if (!existsSync(path)) continue;
      try {
        return koffi.load(path);
      } catch (err) {
        tried.push(`${path} (${(err as Error).message.split('\n')[0]})`);
      }
    }
  }
  throw new CudaUnavailable(
    `${what} not found: tried ${tried.join(', ')} and the folders ${cudaLibraryDirs(roots).join(', ')}`,
    fix,
  );
}
