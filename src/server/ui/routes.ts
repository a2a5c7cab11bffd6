import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The page's files: plain ES modules, HTML and CSS served as they are in the repository (no build step). */
export const STATIC_DIR = join(import.meta.dirname, 'static');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// Everything the page loads comes from this server; nothing inline, so model output can never run as script.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface PageFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The files of `dir` by name, read once (the page is small); only these names are ever served. */
export function pageFiles(dir = STATIC_DIR): Map<string, PageFile> {
  const files = new Map<string, PageFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, type, etag: `"${createHash('sha1').update(body).digest('hex').slice(0, 20)}"` });
  }
  return files;
}

const pathOf = (request: FastifyRequest) => request.url.split('?')[0]!;

/** A browser navigating here (clients that probe `/`, as they probe Ollama's, do not ask for HTML). */
export function wantsHtml(request: FastifyRequest): boolean {
  return /\btext\/html\b/.test(request.headers.accept ?? '');
}

/** Requests that need no API key: the page's own files, and a browser's visit to `/` that is sent on to them. */
export function isPageRequest(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const path = pathOf(request);
  return path === '/ui' || path.startsWith('/ui/') || (path === '/' && wantsHtml(request));
}

function send(request: FastifyRequest, reply: FastifyReply, file: PageFile) {
  reply
    .header('content-type', file.type)
    .header('etag', file.etag)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
  if (file.type.startsWith('text/html')) reply.header('content-security-policy', CSP);
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.send(file.body);
}

/** GET /ui (the page) and /ui/<file> (its modules and styles). */
export function registerUi(app: FastifyInstance, files = pageFiles()): void {
  app.get('/ui', async (request, reply) => {
    const query = request.url.slice(pathOf(request).length);
    // Relative, so that a proxy serving pagoda under a path prefix keeps it.
    return reply.redirect(`ui/${query}`, 302);
  });
  app.get('/ui/', async (request, reply) => send(request, reply, files.get('index.html')!));
  app.get<{ Params: { file: string } }>('/ui/:file', async (request, reply) => {
    const file = files.get(request.params.file);
    if (!file) return reply.callNotFound();
    return send(request, reply, file);
  });
}
