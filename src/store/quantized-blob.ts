import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';
import type { ModelSource } from './manifest.ts';
import { blobFileName } from './ollama/manifest.ts';
import type { QuantizeOutcome } from './quantize-worker.ts';

/**
 * `quantizeToGguf` and the file's SHA-256 in a worker thread: quantizing a large model takes minutes, and hashing its
 * gigabytes seconds, which a server cannot stop for. Resolves to the hex digest.
 */
function quantizeInWorker(source: string, out: string, scheme: QuantScheme): Promise<string> {
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
      if (outcome?.ok) resolve(outcome.digest!);
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
  const partial = join(dir, `quantize-${randomUUID()}.gguf`);
  try {
    const digest = `sha256:${await quantizeInWorker(basePath, partial, scheme)}`;
    renameSync(partial, join(dir, blobFileName(digest)));
    return { kind: 'blob', digest };
  } finally {
    rmSync(partial, { force: true });
  }
}
