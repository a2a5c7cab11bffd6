import type { FastifyInstance } from 'fastify';

/** A route's URL pattern as a regular expression: `:name` one path segment, `*` the rest. */
function patternOf(url: string): RegExp {
  const parts = url.split(/(:[A-Za-z0-9_]+|\*)/).map((p) => {
    if (p === '*') return '.*';
    if (p.startsWith(':')) return '[^/]+';
    return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`);
}

/**
 * The methods each registered path answers, so that a request with another method gets 405 with `Allow` rather
 * than a 404 (Fastify's router knows only found or not found). Register before the routes.
 */
export function routeMethods(app: FastifyInstance): (path: string) => string[] {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    routes.push({ pattern: patternOf(route.url), methods });
  });
  return (path) => [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
}
