import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import { modelsDir } from '../../store/locations.ts';
import { blobFileName, DIGEST } from '../../store/ollama/manifest.ts';
import { ApiError } from '../errors.ts';

/**
 * Where an uploaded blob waits for the create that names it (`uploads/`, apart from `blobs/`, which a model's removal
 * prunes), the digest checked first (400 naming it otherwise).
 */
export function uploadPath(digest: string, field = 'digest'): string {
  if (!DIGEST.test(digest)) {
    throw new ApiError(
      400,
      `${field}: ${JSON.stringify(digest.slice(0, 80))} is not a digest (sha256:<64 hex>)`,
      field,
    );
  }
  return join(modelsDir(), 'uploads', blobFileName(digest));
}

/** Whether the store has a blob: uploaded, or a model's. */
const stored = (digest: string) =>
  existsSync(uploadPath(digest)) || existsSync(join(modelsDir(), 'blobs', blobFileName(digest)));

/**
 * HEAD and POST /api/blobs/:digest (Ollama's): whether the store has a blob, and a blob uploaded into it (as `ollama
 * create` sends a Modelfile's GGUF before naming it in /api/create's `files`). The body streams to a temporary file
 * while it is hashed, and becomes the blob only when its digest is the one named; nothing is buffered. The upload
 * must arrive within the server's request timeout (`--request-timeout`, 60 s by default; 0 for none).
 */
export function registerBlobRoutes(app: FastifyInstance): void {
  app.head('/api/blobs/:digest', async (request, reply) => {
    return reply.code(stored((request.params as { digest: string }).digest) ? 200 : 404).send();
  });

  app.register(async (raw) => {
    // This route's body is the blob's bytes, however long: the stream, not the JSON parser.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    raw.post('/api/blobs/:digest', async (request, reply) => {
      const { digest } = request.params as { digest: string };
      const path = uploadPath(digest);
      if (stored(digest)) return reply.code(200).send();
      mkdirSync(dirname(path), { recursive: true });
      // Each upload its own temporary file (two uploads of one digest may run at once).
      const partial = `${path}.upload-${randomUUID()}`;
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
          createWriteStream(partial, { flags: 'wx' }),
        );
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest) throw new ApiError(400, `digest mismatch: the body's is ${got}, not ${digest}`, 'digest');
        renameSync(partial, path);
      } catch (err) {
        // A client that went away mid-upload is no server error: nobody is left to answer.
        if (request.socket.destroyed) return reply;
        throw err;
      } finally {
        rmSync(partial, { force: true });
      }
      return reply.code(201).send();
    });
  });
}
