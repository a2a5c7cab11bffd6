import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';
import { hostOf, isAllowedHost } from './host-check.ts';

const sha = (s: string) => createHash('sha256').update(s).digest();

/**
 * Bearer-token check for every route but the readiness probes /health and /ping (Anthropic's clients send the key as
 * `x-api-key`); compares digests so timing says nothing about the key.
 */
export function requireApiKey(apiKey: string) {
  const expected = sha(apiKey);
  return (request: FastifyRequest): void => {
    const path = request.url.split('?')[0];
    if (path === '/health' || path === '/ping' || request.method === 'OPTIONS') return;
    const header = request.headers.authorization ?? '';
    const xApiKey = request.headers['x-api-key'];
    const given = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? (typeof xApiKey === 'string' ? xApiKey : undefined);
    if (given === undefined || !timingSafeEqual(sha(given.trim()), expected)) {
      throw new ApiError(
        401,
        given !== undefined
          ? 'invalid API key'
          : 'missing API key: send "Authorization: Bearer <key>" (or "x-api-key: <key>")',
        null,
        'invalid_api_key',
        {
          'www-authenticate': 'Bearer',
        },
      );
    }
  };
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function crossSite(message: string): ApiError {
  return new ApiError(403, message, null, 'origin_not_allowed');
}

/**
 * CORS, off unless origins are configured. A browser request from an origin that is neither allowed nor this
 * server under a local name is refused (403), whatever its content type, so a web page cannot drive a local server
 * through simple requests; an Origin that merely equals the Host proves nothing (DNS rebinding makes them agree).
 * A request that acts (not GET/HEAD) marked `Sec-Fetch-Site: cross-site` is refused unless its Origin is allowed.
 */
export function corsPolicy(origins: string[]) {
  const allowed = origins.map(globToRegExp);
  return (request: FastifyRequest, reply: FastifyReply): 'preflight' | undefined => {
    const origin = request.headers.origin;
    if (origin && allowed.some((re) => re.test(origin))) {
      reply.header('access-control-allow-origin', origin);
      reply.header('vary', 'Origin');
      if (request.method === 'OPTIONS') {
        reply.header('access-control-allow-methods', 'GET, POST, HEAD, OPTIONS');
        reply.header(
          'access-control-allow-headers',
          'authorization, content-type, openai-organization, openai-project, x-api-key, anthropic-version, x-stainless-*, *',
        );
        reply.header('access-control-max-age', '600');
        return 'preflight';
      }
      return;
    }
    if (origin) {
      const host = request.headers.host ?? '';
      const sameOrigin = (origin === `http://${host}` || origin === `https://${host}`) && isAllowedHost(hostOf(host));
      if (!sameOrigin) {
        throw crossSite(`origin "${origin.slice(0, 200)}" is not allowed (set PAGODA_ORIGINS to allow it)`);
      }
    }
    if (request.headers['sec-fetch-site'] === 'cross-site' && !SAFE_METHODS.has(request.method)) {
      throw crossSite('a cross-site browser request is not allowed (set PAGODA_ORIGINS to allow its origin)');
    }
  };
}
