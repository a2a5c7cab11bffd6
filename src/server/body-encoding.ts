import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { ApiError } from './errors.ts';

type Decoder = (buf: Buffer, opts: { maxOutputLength: number }) => Promise<Buffer>;

/** The content codings a request body may come in (HTTP's deflate is zlib-wrapped). */
const DECODERS: Record<string, Decoder> = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
};

/**
 * A body sent with `Content-Encoding`, decoded off the event loop (codings undone last applied first), held to `limit`
 * bytes once decoded as it is before (a small body must not inflate past the limit); another coding is a 415 naming it.
 */
export async function decodeBody(buf: Buffer, contentEncoding: string | undefined, limit: number): Promise<Buffer> {
  if (!contentEncoding || buf.length === 0) return buf;
  const codings = contentEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  let out = buf;
  for (const coding of codings.reverse()) {
    const decode = DECODERS[coding];
    if (!decode) {
      throw new ApiError(
        415,
        `Content-Encoding "${coding.slice(0, 50)}" is not supported (expected gzip, deflate or br)`,
      );
    }
    try {
      out = await decode(out, { maxOutputLength: limit });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ApiError(413, `request body is larger than the limit (${limit} bytes) once decoded`);
      }
      throw new ApiError(400, `request body is not valid ${coding} data`);
    }
  }
  return out;
}
