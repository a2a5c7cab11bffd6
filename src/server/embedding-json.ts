import { endianness } from 'node:os';
import type { FastifyReply } from 'fastify';

/**
 * Embedding responses written as JSON text by hand, the same text JSON.stringify gives for the same object
 * (test/server/embedding-json.test.ts compares them): JSON.stringify scans a row's 4 KiB of base64 for characters to
 * escape, and a float row through Array.from boxes every number first. On the embeddings bench these were the
 * server thread's largest cost per request after the socket write.
 */

/** Fastify's content type for the objects it serializes. */
const JSON_TYPE = 'application/json; charset=utf-8';

const LITTLE_ENDIAN = endianness() === 'LE';

/** Little-endian float32 bytes in base64, as OpenAI's clients decode them (on such a host, the row's own bytes). */
export function base64(v: Float32Array): string {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const le = new DataView(new ArrayBuffer(v.length * 4));
  for (const [i, x] of v.entries()) le.setFloat32(i * 4, x, true);
  return Buffer.from(le.buffer).toString('base64');
}

/**
 * A row as a JSON array of numbers. JSON.stringify writes a finite number as ToString does, which is what `join`
 * writes for each element; NaN and ±Infinity, which it writes as null, take its own path.
 */
export function floatsJson(v: Float32Array): string {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return JSON.stringify(Array.from(v));
  return `[${v.join(',')}]`;
}

/** OpenAI's embeddings list: rows as float arrays or base64 (its alphabet needs no escapes in a JSON string). */
export function openAiEmbeddingsJson(
  rows: readonly Float32Array[],
  format: 'float' | 'base64',
  model: string,
  tokens: number,
): string {
  const data = rows.map(
    (e, index) =>
      `{"object":"embedding","index":${index},"embedding":${format === 'base64' ? `"${base64(e)}"` : floatsJson(e)}}`,
  );
  return `{"object":"list","data":[${data.join(',')}],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`;
}

/** Ollama's /api/embed answer (durations in nanoseconds, whole numbers). */
export function ollamaEmbedJson(
  model: string,
  rows: readonly Float32Array[],
  totalNs: number,
  loadNs: number,
  tokens: number,
): string {
  return `{"model":${JSON.stringify(model)},"embeddings":[${rows.map(floatsJson).join(',')}],"total_duration":${totalNs},"load_duration":${loadNs},"prompt_eval_count":${tokens}}`;
}

/** Sends JSON text as Fastify sends a serialized object: same content type, its hooks and error handling. */
export function asJson(reply: FastifyReply, text: string): string {
  reply.type(JSON_TYPE);
  return text;
}
