import { closeSync, openSync, readSync } from 'node:fs';

/** The first four bytes of every GGUF file. */
const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

/**
 * True when the file starts with GGUF's magic. GGUF files are known by their content, not their name: Ollama's
 * blobs have no extension.
 */
export function hasGgufMagic(path: string): boolean {
  const head = Buffer.alloc(GGUF_MAGIC.length);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(GGUF_MAGIC);
  } finally {
    closeSync(fd);
  }
}
