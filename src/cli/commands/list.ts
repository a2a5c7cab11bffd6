import { Command } from 'commander';
import { listModels } from '../../store/catalog.ts';
import { formatAge, formatBytes, formatTable } from '../progress.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda list`: named models in the store and the Hugging Face cache. */
export const registerList: RegisterCommand = (program) => {
  program.addCommand(
    new Command('list')
      .alias('ls')
      .description('list models in the store and the Hugging Face cache')
      .action(() => {
        const rows = [['NAME', 'ID', 'SIZE', 'MODIFIED']];
        for (const m of listModels()) {
          const size = m.problem ? 'missing base' : formatBytes(m.size);
          rows.push([m.name, m.digest.slice(0, 12), size, formatAge(m.modifiedAt)]);
        }
        process.stdout.write(`${formatTable(rows)}\n`);
      }),
  );
};
