import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { pagodaAsync } from '../helpers/cli.ts';

/** `pagoda ps` against a server whose /api/ps answers `models`. */
async function ps(models: { name: string; expires_at: string }[]): Promise<string[]> {
  const body = JSON.stringify({ models: models.map((m) => ({ ...m, digest: 'a'.repeat(64), size: 1 << 20 })) });
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as { port: number };
    const { stdout } = await pagodaAsync(['ps'], {
      env: { ...process.env, PAGODA_HOST: `127.0.0.1:${port}` },
    });
    return stdout.trimEnd().split('\n');
  } finally {
    server.close();
  }
}

test('ps says "Forever" where ollama ps does: more than 20 whole years ahead (keep_alive -1 is 2^63 ns)', async () => {
  const ahead = (ms: number) => new Date(Date.now() + ms).toISOString();
  const year = 365 * 86_400_000;
  const rows = await ps([
    { name: 'never:latest', expires_at: ahead(2 ** 63 / 1e6) },
    { name: 'soon:latest', expires_at: ahead(5 * 60_000 + 20_000) },
    { name: 'decade:latest', expires_at: ahead(15 * year) },
  ]);
  assert.match(rows[1]!, /^never:latest\s.*\sForever$/);
  assert.match(rows[2]!, /^soon:latest\s.*\s5 minutes from now$/);
  assert.match(rows[3]!, /^decade:latest\s.*\s\d+ minutes from now$/);
});
