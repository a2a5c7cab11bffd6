import { Command } from 'commander';
import { formatBytes, formatTable } from '../progress.ts';
import { askServer, serverUrl } from '../server-url.ts';
import type { RegisterCommand } from './index.ts';

export interface RunningModel {
  name: string;
  digest: string;
  size: number;
  size_vram?: number;
  expires_at?: string;
}

/** `pagoda ps`: the models a running server holds loaded (GET /api/ps on PAGODA_HOST). */
export const registerPs: RegisterCommand = (program) => {
  program.addCommand(
    new Command('ps').description('list the models a running server has loaded').action(async () => {
      const { models } = (await askServer(serverUrl(), '/api/ps')) as { models: RunningModel[] };
      const rows = [['NAME', 'ID', 'SIZE', 'PROCESSOR', 'UNTIL']];
      for (const m of models) {
        const processor = m.size_vram ? '100% GPU' : '100% CPU';
        rows.push([m.name, m.digest.slice(0, 12), formatBytes(m.size), processor, until(m.expires_at)]);
      }
      process.stdout.write(`${formatTable(rows)}\n`);
    }),
  );
};

/** When a model unloads, as `ollama ps` says it: "Forever" beyond 20 whole years (a keep_alive of -1 is ~292). */
function until(expires: string | undefined): string {
  if (!expires) return 'Forever';
  const s = Math.round((Date.parse(expires) - Date.now()) / 1000);
  if (!Number.isFinite(s) || Math.floor(s / (365 * 86400)) > 20) return 'Forever';
  if (s <= 0) return 'Stopping...';
  return s < 60 ? `${s} seconds from now` : `${Math.round(s / 60)} minutes from now`;
}
