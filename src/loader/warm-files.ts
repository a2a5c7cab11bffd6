import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const CHUNK = 16 * 2 ** 20;
const PARALLEL = 4;
const WEIGHT_FILE = /\.(safetensors|gguf)$/;

/** The weight files of a model folder, or the file itself (a GGUF file, whatever its name). */
async function weightFiles(path: string): Promise<string[]> {
  if ((await stat(path)).isFile()) return [path];
  return (await readdir(path)).filter((f) => WEIGHT_FILE.test(f)).map((f) => join(path, f));
}

/**
 * Reads a model's weight files once, asynchronously and discarding the bytes, so that they sit in the page cache
 * before the synchronous loader reads them: a server's event loop stays free (answering /health) through what is the
 * slow part of a cold load. Returns the bytes read. Reads run `PARALLEL` chunks at a time, each into its own buffer.
 */
export async function warmWeightFiles(path: string): Promise<number> {
  const jobs: { file: string; offset: number; size: number }[] = [];
  for (const file of await weightFiles(path)) {
    const { size } = await stat(file);
    for (let offset = 0; offset < size; offset += CHUNK)
      jobs.push({ file, offset, size: Math.min(CHUNK, size - offset) });
  }
  let next = 0;
  let total = 0;
  const reader = async () => {
    const buffer = Buffer.allocUnsafe(CHUNK);
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const handle = await open(job.file, 'r');
      try {
        const { bytesRead } = await handle.read(buffer, 0, job.size, job.offset);
        total += bytesRead;
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, reader));
  return total;
}
