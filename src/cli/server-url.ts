import { isIPv6 } from 'node:net';
import { UserError } from '../util/errors.ts';

/**
 * The server a client command talks to: `PAGODA_HOST` (or `OLLAMA_HOST`) as Ollama reads it — `host`,
 * `host:port`, `:port`, an IPv6 address (port 11434 unless given), or a URL (its scheme's port unless given) — else
 * 127.0.0.1:11434. A listen-on-all address is reached through
 * localhost.
 */
export function serverUrl(env: Record<string, string | undefined> = process.env): string {
  const name = env.PAGODA_HOST ? 'PAGODA_HOST' : 'OLLAMA_HOST';
  const raw = (env[name] || '').trim();
  // A bare IPv6 address (`::1`) is a host, as Ollama reads it, not a `:port`.
  const spec = isIPv6(raw) ? `[${raw}]` : raw;
  let url: URL;
  try {
    url = new URL(
      /^[a-z]+:\/\//i.test(spec) ? spec : `http://${spec.startsWith(':') ? `127.0.0.1${spec}` : spec || '127.0.0.1'}`,
    );
  } catch {
    throw new UserError(`${name}: "${raw}" is not a host, host:port, :port or URL`);
  }
  // No scheme and no port: Ollama's port. A URL without one keeps its scheme's (80, 443), as Ollama reads it.
  if (!url.port && !/^[a-z]+:\/\//i.test(spec) && !/^(\[[^\]]*\]|[^/:]*):\d+/.test(spec)) url.port = '11434';
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return url.origin;
}

/** The Authorization header a client command sends: `key`, else PAGODA_API_KEY or OLLAMA_API_KEY (none: no header). */
export function authHeaders(key = process.env.PAGODA_API_KEY || process.env.OLLAMA_API_KEY): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** True when a server answers GET /api/version quickly and knows `model` (POST /api/show). */
export async function serverServes(base: string, model: string, timeoutMs = 1000): Promise<boolean> {
  const headers = { 'content-type': 'application/json', ...authHeaders() };
  try {
    const version = await fetch(`${base}/api/version`, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await version.body?.cancel();
    if (!version.ok) return false;
    const show = await fetch(`${base}/api/show`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model }),
      signal: AbortSignal.timeout(timeoutMs * 5),
    });
    await show.body?.cancel();
    return show.ok;
  } catch {
    return false;
  }
}

/**
 * JSON from a running server: GET `path`, or POST `body`. No server there is one line naming the URL; an error status
 * is one line with the server's answer.
 */
export async function askServer(
  base: string,
  path: string,
  body?: unknown,
  opts: {
    /** The key sent instead of the environment's (authHeaders). */
    apiKey?: string;
    /** The line an error status gives instead of the server's own answer (undefined: the answer). */
    statusMessage?: (status: number) => string | undefined;
  } = {},
): Promise<unknown> {
  const headers = authHeaders(opts.apiKey);
  let res: Response;
  try {
    res =
      body === undefined
        ? await fetch(`${base}${path}`, { headers })
        : await fetch(`${base}${path}`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
  } catch {
    throw new UserError(`no pagoda server is running at ${base} (start one with \`pagoda serve\` or set PAGODA_HOST)`);
  }
  if (!res.ok) {
    const text = (await res.text()).slice(0, 500);
    throw new UserError(opts.statusMessage?.(res.status) ?? `${base}${path} answered ${res.status}: ${text}`);
  }
  return res.json();
}
