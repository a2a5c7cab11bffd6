import cliProgress from 'cli-progress';
import ora, { type Ora } from 'ora';
import type { PullProgress } from '../store/hub.ts';

/** Renders pull events: one progress bar per file on a terminal, one line per finished file otherwise. */
export function pullProgressRenderer(stream: NodeJS.WriteStream = process.stderr): {
  onProgress: (e: PullProgress) => void;
  stop: () => void;
} {
  // Bars and spinners need a terminal with a size (a zero-column pty would make them redraw forever).
  const tty = Boolean(stream.isTTY) && (stream.columns ?? 0) > 0;
  let multi = tty
    ? new cliProgress.MultiBar(
        {
          stream,
          format: '{file} |{bar}| {percentage}% {done}/{size}',
          hideCursor: true,
          clearOnComplete: false,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const bars = new Map<string, cliProgress.SingleBar>();
  const finished = new Set<string>();
  let spinner: Ora | null = null;
  return {
    onProgress: (e) => {
      if (e.total === undefined || e.completed === undefined) {
        if (e.status === 'pulling manifest' && tty) spinner = ora({ text: 'pulling manifest', stream }).start();
        else if (!tty) stream.write(`${e.status}\n`);
        return;
      }
      spinner?.stop();
      spinner = null;
      const file = e.status.replace(/^pulling /, '');
      const payload = { file, done: formatBytes(e.completed), size: formatBytes(e.total) };
      if (multi) {
        let bar = bars.get(file);
        if (!bar) {
          bar = multi.create(e.total, e.completed, payload);
          bars.set(file, bar);
        }
        bar.update(e.completed, payload);
      } else if (e.completed === e.total && !finished.has(file)) {
        finished.add(file);
        stream.write(`pulled ${file} (${formatBytes(e.total)})\n`);
      }
    },
    stop: () => {
      spinner?.stop();
      spinner = null;
      multi?.stop();
      multi = null;
      bars.clear();
    },
  };
}

/** Runs `work` under a spinner on a terminal (for anything that may take more than a second). */
export async function withSpinner<T>(text: string, work: () => Promise<T> | T): Promise<T> {
  const tty = process.stderr.isTTY && (process.stderr.columns ?? 0) > 0;
  const spinner = tty ? ora({ text, stream: process.stderr }).start() : null;
  try {
    const result = await work();
    spinner?.succeed();
    return result;
  } catch (err) {
    spinner?.fail();
    throw err;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

/** "3 minutes ago", as Ollama's list prints ages. */
export function formatAge(date: Date, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - date.getTime()) / 1000));
  const units: [number, string][] = [
    [86400 * 365, 'year'],
    [86400 * 30, 'month'],
    [86400 * 7, 'week'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    const n = Math.floor(s / size);
    if (n >= 1) return `${n} ${unit}${n > 1 ? 's' : ''} ago`;
  }
  return 'just now';
}

/** Left-aligned columns separated by three spaces, like Ollama's tables. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * A status line redrawn in place (`\r`, erased to the end) on a terminal with a size; null clears it. Undefined on
 * anything else (a log, a pipe), where the one summary line says it all.
 */
export function statusLine(stream: NodeJS.WriteStream = process.stderr): ((line: string | null) => void) | undefined {
  if (!stream.isTTY || !(stream.columns > 0)) return undefined;
  return (line) => stream.write(line === null ? '\r\x1b[K' : `\r${line.slice(0, stream.columns - 1)}\x1b[K`);
}
