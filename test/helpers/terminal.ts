import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from './fixtures.ts';

/** One step of a terminal script: send text, or expect a regex within some seconds. */
export type TerminalStep = ['send', string] | ['expect', string, number?];

/** Drives `pagoda <args>` in a pseudo-terminal (test/helpers/pty-driver.py) through a script of sends and expects. */
export async function inTerminal(steps: TerminalStep[], args: string[], env: Record<string, string>) {
  const { stdout } = await promisify(execFile)(
    'python3',
    [
      join(projectRoot, 'test/helpers/pty-driver.py'),
      JSON.stringify(steps),
      process.execPath,
      join(projectRoot, 'bin/pagoda.mjs'),
      ...args,
    ],
    { env: { ...process.env, ...env, TERM: 'dumb' }, timeout: 120_000 },
  );
  return JSON.parse(stdout) as { ok: boolean; error: string | null; output: string; code: number };
}
