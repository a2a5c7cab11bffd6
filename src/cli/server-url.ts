/**
 * The server a client command talks to: `PAGODA_HOST` (or `OLLAMA_HOST`) as Ollama reads it — `host`,
 * `host:port`, `:port` or a URL — else 127.0.0.1:11434. A listen-on-all address is reached through localhost.
 */
export function serverUrl(env: Record<string, string | undefined> = process.env): string {
  const raw = (env.PAGODA_HOST || env.OLLAMA_HOST || '').trim();
  const url = new URL(
    /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw.startsWith(':') ? `127.0.0.1${raw}` : raw || '127.0.0.1'}`,
  );
  if (!url.port && !/^[a-z]+:\/\/[^/]*:\d+/i.test(raw)) url.port = '11434';
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return url.origin;
}

/** True when a server answers GET /api/version quickly and knows `model` (POST /api/show). */
export async function serverServes(base: string, model: string, timeoutMs = 1000): Promise<boolean> {
  const key = process.env.PAGODA_API_KEY || process.env.OLLAMA_API_KEY;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
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
