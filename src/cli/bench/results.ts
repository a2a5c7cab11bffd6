import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { markdownTable } from '../../util/markdown.ts';

/** Where and on what a benchmark ran, for its heading in a results file. */
export interface BenchContext {
  name: string;
  /** 'CPU' or the GPU's name; for a benchmark of a server, where its requests went ("the server at URL"). */
  deviceName: string;
  /** The benchmark timed a server elsewhere: `deviceName` says which, not this machine's backend. */
  remote?: boolean;
  /** The command as typed (`pagoda bench <name> ...`). */
  command: string;
  /** What the command ran on, in words (model, workload). */
  about: string;
}

/** Appends one benchmark section (date, machine, device, command, table) to a results file; says so on stderr. */
export function appendBenchResult(file: string, ctx: BenchContext, header: string[], rows: string[][]): void {
  const cpu = cpus();
  const backend = ctx.remote
    ? ctx.deviceName
    : ctx.deviceName === 'CPU'
      ? 'CPU backend'
      : `CUDA backend on ${ctx.deviceName}`;
  appendFileSync(
    file,
    `\n## ${ctx.name} — ${new Date().toISOString().slice(0, 10)}, ${cpu[0]?.model ?? 'unknown CPU'} (${cpu.length} cores), Node ${process.version}, ${backend}, load average ${loadavg()[0]!.toFixed(1)}\n\n` +
      `Command: \`${ctx.command}\` (${ctx.about})\n\n${markdownTable(header, rows)}\n`,
  );
  process.stderr.write(`appended to ${file}\n`);
}

/** `pagoda bench <name> ...` as it was typed. */
export function benchCommand(name: string): string {
  return `pagoda bench ${name} ${process.argv.slice(process.argv.indexOf(name) + 1).join(' ')}`.trim();
}
