import { execFile, type SpawnSyncOptionsWithStringEncoding, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from './fixtures.ts';

export const pagodaBin = join(projectRoot, 'bin/pagoda.mjs');

type SyncOptions = Omit<SpawnSyncOptionsWithStringEncoding, 'encoding' | 'stdio'>;

/**
 * `pagoda ARGS` run to its end. Its stdin is closed unless `input` is given: `run` reads a stdin that is not a terminal
 * (as `ollama run` does), so an open pipe would keep it waiting.
 */
export function pagodaSync(args: string[], options: SyncOptions = {}) {
  return spawnSync(process.execPath, [pagodaBin, ...args], {
    ...options,
    encoding: 'utf8',
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

/** The same, asynchronously (rejects on a non-zero exit with the output on the error, as execFile does). */
export function pagodaAsync(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  const pending = promisify(execFile)(process.execPath, [pagodaBin, ...args], { ...options, encoding: 'utf8' });
  pending.child.stdin?.end();
  return pending;
}
