import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The shared fixtures folder: `PAGODA_FIXTURES`, else `../shared/fixtures` beside the project.
 * Fixtures that came from public repositories are read from there at test time and never committed.
 */
export function sharedFixtures(): string | null {
  const dir = process.env.PAGODA_FIXTURES ?? join(projectRoot, '..', 'shared', 'fixtures');
  return existsSync(dir) ? dir : null;
}

/** Path of a shared fixture, or a skip message naming what is missing (pass it to `test(..., { skip })`). */
export function sharedFixture(rel: string): { path: string; skip: false } | { path: ''; skip: string } {
  const root = sharedFixtures();
  const path = root ? join(root, rel) : '';
  if (root && existsSync(path)) return { path, skip: false };
  return { path: '', skip: `shared fixture ${rel} not found (set PAGODA_FIXTURES to the fixtures folder)` };
}

export { projectRoot };

/**
 * A model fixture folder: the committed copy under test/fixtures/models/<name> when present (the generated tiny-*
 * models may be committed), else the shared fixtures folder.
 */
export function modelFixture(name: string): { path: string; skip: false } | { path: ''; skip: string } {
  const local = join(projectRoot, 'test', 'fixtures', 'models', name);
  if (existsSync(join(local, 'config.json'))) return { path: local, skip: false };
  return sharedFixture(join('models', name));
}
