import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';
import type { ModelSource } from './manifest.ts';
import { blobFileName } from './ollama/manifest.ts';
import type { QuantizeOutcome } from './quantize-worker.ts';

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

/** `quantizeToGguf` in a worker thread: quantizing a large model takes minutes, which a server cannot stop for. */
function quantizeInWorker(source: string, out: string, scheme: QuantScheme): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./quantize-worker-entry.mjs', import.meta.url), {
      workerData: { source, out, scheme },
    });
    let outcome: QuantizeOutcome | null = null;
    worker.on('message', (m: QuantizeOutcome) => {
      outcome = m;
    });
    worker.on('error', reject);
    worker.on('exit', () => {
      if (outcome?.ok) resolve();
      else if (outcome?.user) reject(new UserError(outcome.message!));
      else reject(new Error(`quantizing ${source}: ${outcome?.message ?? 'the worker stopped'}`));
    });
  });
}

/**
 * `create --quantize` (`/api/create`'s `quantize`, as `ollama create --quantize`): the base model's weights (a GGUF
 * file or a folder) written quantized into the store's blobs, named by digest like a pulled model's.
 */
export async function quantizedBlob(storeRoot: string, basePath: string, scheme: QuantScheme): Promise<ModelSource> {
  const dir = join(storeRoot, 'blobs');
  mkdirSync(dir, { recursive: true });
  const partial = join(dir, `quantize-${process.pid}-${Date.now()}.gguf`);
  try {
    await quantizeInWorker(basePath, partial, scheme);
    const digest = `sha256:${sha256File(partial)}`;
    renameSync(partial, join(dir, blobFileName(digest)));
    return { kind: 'blob', digest };
  } finally {
    rmSync(partial, { force: true });
  }
}
