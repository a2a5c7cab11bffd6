import { z } from 'zod';

/** Media types of the layers of an Ollama model (`application/vnd.ollama.image.<kind>`). */
export const LAYER_PREFIX = 'application/vnd.ollama.image.';

/** A blob digest as registries write it; anything else (other algorithms, path pieces) is refused. */
export const DIGEST = /^sha256:[0-9a-f]{64}$/;

const Descriptor = z.object({
  mediaType: z.string(),
  digest: z.string().regex(DIGEST, 'expected "sha256:" and 64 lowercase hex digits'),
  size: z.number().int().nonnegative(),
});
export type Layer = z.infer<typeof Descriptor>;

/** An image manifest (Docker's v2 schema) as Ollama's registry serves it and Ollama's store keeps it. */
export const OllamaManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: Descriptor.optional(),
  layers: z.array(Descriptor).min(1),
});
export type OllamaManifest = z.infer<typeof OllamaManifestSchema>;

/** Parses manifest text; throws with the first problem in one line (the caller names the file). */
export function parseOllamaManifest(text: string): OllamaManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`);
  }
  const parsed = OllamaManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Where a blob lives in a store: `blobs/sha256-<hex>` (the digest is checked against DIGEST first). */
export function blobFileName(digest: string): string {
  if (!DIGEST.test(digest)) throw new Error(`invalid blob digest ${JSON.stringify(digest)}`);
  return digest.replace(':', '-');
}
