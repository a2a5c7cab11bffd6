import { Command } from 'commander';
import { describeModel, SHOW_PARTS } from '../model-description.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda show MODEL`: architecture and sizes, plus what a Modelfile added. */
export const registerShow: RegisterCommand = (program) => {
  program.addCommand(
    new Command('show')
      .description("show a model's architecture, parameters, template, system prompt and license")
      .argument('<model>', 'a stored name, a Hugging Face cache repo or a model folder')
      .option('--modelfile', 'print the Modelfile')
      .option('--parameters', 'print the parameters')
      .option('--template', 'print the template')
      .option('--system', 'print the system prompt')
      .option('--license', 'print the license')
      .action((ref: string, opts: Record<string, boolean | undefined>) => {
        const text = describeModel(
          ref,
          SHOW_PARTS.find((part) => opts[part]),
        );
        process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }),
  );
};
