import { Command } from 'commander';
import { removeModel } from '../../store/create.ts';
import { parseModelName } from '../../store/names.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda rm NAME...` */
export const registerRm: RegisterCommand = (program) => {
  program.addCommand(
    new Command('rm')
      .alias('delete')
      .description('remove models from the store')
      .argument('<names...>', 'stored model names')
      .action((names: string[]) => {
        for (const name of names) parseModelName(name);
        for (const name of names) {
          removeModel(name);
          process.stdout.write(`deleted ${name}\n`);
        }
      }),
  );
};
