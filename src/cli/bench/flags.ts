import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { parseIntFlag } from '../engine-options.ts';

/** `--save FILE`, checked before the benchmark runs: its folder must exist. */
export function saveFile(opts: Record<string, unknown>): string | undefined {
  if (opts.save === undefined) return undefined;
  const file = String(opts.save);
  if (!existsSync(dirname(resolve(file)))) {
    throw new UserError(`--save ${file}: folder ${dirname(resolve(file))} does not exist`);
  }
  return file;
}

export function parseRange(v: string, flag: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  if (!m || lo < 1 || hi < lo) throw new UserError(`${flag} ${v}: expected two integers a,b with 1 <= a <= b`);
  return [lo, hi];
}

export function printRows(rows: readonly (readonly [string, string])[]): void {
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(20)} ${v}\n`);
}

export function atLeast(v: unknown, flag: string, min: number): number {
  const n = parseIntFlag(String(v), flag);
  if (n < min) throw new UserError(`${flag} ${v}: expected an integer >= ${min}`);
  return n;
}
