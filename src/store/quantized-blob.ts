import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeToGguf } from '../loader/gguf/quantize.ts';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import type { ModelSource } from './manifest.ts';
import { blobFileName } from './ollama/manifest.ts';

function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * 2 ** 20);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * `create --quantize` (`/api/create`'s `quantize`, as `ollama create --quantize`): the base model's weights (a GGUF
 * file or a folder) written quantized into the store's blobs, named by digest like a pulled model's.
 */
export function quantizedBlob(storeRoot: string, basePath: string, scheme: QuantScheme): ModelSource {
  const dir = join(storeRoot, 'blobs');
  mkdirSync(dir, { recursive: true });
  const partial = join(dir, `quantize-${process.pid}-${Date.now()}.gguf`);
  try {
    quantizeToGguf(basePath, partial, scheme);
    const digest = `sha256:${sha256File(partial)}`;
    renameSync(partial, join(dir, blobFileName(digest)));
    return { kind: 'blob', digest };
  } finally {
    rmSync(partial, { force: true });
  }
}
