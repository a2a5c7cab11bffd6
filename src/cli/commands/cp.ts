import { Command } from 'commander';
import { copyModel } from '../../store/create.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda cp SOURCE DESTINATION` */
export const registerCp: RegisterCommand = (program) => {
  program.addCommand(
    new Command('cp')
      .alias('copy')
      .description('copy a model to a new name')
      .argument('<source>', 'a stored model or a Hugging Face cache repo')
      .argument('<destination>', 'the new name')
      .action((source: string, destination: string) => {
        const stored = copyModel(source, destination);
        process.stdout.write(`copied ${source} to ${stored.name}\n`);
      }),
  );
};
