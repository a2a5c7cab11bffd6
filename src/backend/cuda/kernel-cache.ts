import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The file a compiled kernel is cached under: keyed by source (headers included), options, arch and compiler. */
export function kernelCacheKey(source: string, options: readonly string[], arch: string, compiler: string): string {
  return createHash('sha256')
    .update(source)
    .update('\0')
    .update(options.join('\0'))
    .update('\0')
    .update(arch)
    .update('\0')
    .update(compiler)
    .digest('hex');
}

/** Where the cubin of `name` under `key` lives in the cache folder `dir`. */
export function kernelCachePath(dir: string, name: string, key: string): string {
  return join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${key.slice(0, 24)}.cubin`);
}

/** The cached cubin at `path`, or null. */
export function readCachedKernel(path: string): Uint8Array | null {
  return existsSync(path) ? new Uint8Array(readFileSync(path)) : null;
}

/** Stores a cubin atomically (a concurrent reader sees the whole file or none); a read-only folder is no error. */
export function writeCachedKernel(path: string, cubin: Uint8Array): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, cubin);
    renameSync(tmp, path);
  } catch {
    // A read-only cache folder only costs a recompile next time.
  }
}
