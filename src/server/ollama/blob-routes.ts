import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import { modelsDir } from '../../store/locations.ts';
import { blobFileName, DIGEST } from '../../store/ollama/manifest.ts';
import { ApiError } from '../errors.ts';

/** The store's path of an uploaded blob, the digest checked first (400 naming it otherwise). */
export function blobPath(digest: string, field = 'digest'): string {
  if (!DIGEST.test(digest)) {
    throw new ApiError(
      400,
      `${field}: ${JSON.stringify(digest.slice(0, 80))} is not a digest (sha256:<64 hex>)`,
      field,
    );
  }
  return join(modelsDir(), 'blobs', blobFileName(digest));
}

/**
 * HEAD and POST /api/blobs/:digest (Ollama's): whether the store has a blob, and a blob uploaded into it (as `ollama
 * create` sends a Modelfile's GGUF before naming it in /api/create's `files`). The body streams to a temporary file
 * while it is hashed, and becomes the blob only when its digest is the one named; nothing is buffered.
 */
export function registerBlobRoutes(app: FastifyInstance): void {
  app.head('/api/blobs/:digest', async (request, reply) => {
    const path = blobPath((request.params as { digest: string }).digest);
    return reply.code(existsSync(path) ? 200 : 404).send();
  });

  app.register(async (raw) => {
    // This route's body is the blob's bytes, however long: the stream, not the JSON parser.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    raw.post('/api/blobs/:digest', async (request, reply) => {
      const { digest } = request.params as { digest: string };
      const path = blobPath(digest);
      if (existsSync(path)) return reply.code(200).send();
      mkdirSync(join(path, '..'), { recursive: true });
      const partial = `${path}.upload-${process.pid}-${Date.now()}`;
      const hash = createHash('sha256');
      try {
        const body = (request.body as Readable | undefined) ?? request.raw;
        await pipeline(
          body,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              hash.update(chunk);
              yield chunk;
            }
          },
          createWriteStream(partial),
        );
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest) throw new ApiError(400, `digest mismatch: the body's is ${got}, not ${digest}`, 'digest');
        renameSync(partial, path);
      } finally {
        rmSync(partial, { force: true });
      }
      return reply.code(201).send();
    });
  });
}
