import { Command } from 'commander';
import { listModels } from '../../store/catalog.ts';
import { formatAge, formatBytes, formatTable } from '../progress.ts';
import type { RegisterCommand } from './index.ts';

/** Where a listed model lives, as the SOURCE column says it. */
const SOURCE = { store: 'pagoda', ollama: 'ollama', 'hf-cache': 'hf cache' } as const;

/** `pagoda list`: named models in pagoda's store, Ollama's store and the Hugging Face cache. */
export const registerList: RegisterCommand = (program) => {
  program.addCommand(
    new Command('list')
      .alias('ls')
      .description("list models in the store, Ollama's store and the Hugging Face cache")
      .action(() => {
        const rows = [['NAME', 'ID', 'SIZE', 'MODIFIED', 'SOURCE']];
        for (const m of listModels()) {
          const problem = m.origin === 'ollama' ? 'damaged' : 'missing base';
          const size = m.problem ? problem : formatBytes(m.size);
          const modified = m.problem && m.origin === 'ollama' ? '' : formatAge(m.modifiedAt);
          rows.push([m.name, m.digest.slice(0, 12), size, modified, SOURCE[m.origin]]);
        }
        process.stdout.write(`${formatTable(rows)}\n`);
      }),
  );
};
