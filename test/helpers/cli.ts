import { execFile, type SpawnSyncOptionsWithStringEncoding, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
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

/** `pagoda ARGS` whose reader closes stdout after the first output, as `| head -n 1` does: its exit code and stderr. */
export async function pagodaClosingStdout(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [pagodaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdout.once('data', () => child.stdout.destroy());
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr };
}
