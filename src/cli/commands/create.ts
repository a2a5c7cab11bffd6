import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import { createModel } from '../../store/create.ts';
import { parseModelfile } from '../../store/modelfile.ts';
import { parseModelName } from '../../store/names.ts';
import { UserError } from '../../util/errors.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda create NAME -f Modelfile`: a named model from a base plus Modelfile layers. */
export const registerCreate: RegisterCommand = (program) => {
  program.addCommand(
    new Command('create')
      .description('create a named model from a Modelfile (FROM, PARAMETER, SYSTEM, TEMPLATE, MESSAGE, LICENSE)')
      .argument('<name>', 'the new model name, e.g. my-model or my-model:v1')
      .option('-f, --file <path>', 'the Modelfile', 'Modelfile')
      .option(
        '-q, --quantize <type>',
        "store the base's weights quantized: q8_0, q4_k_m, … (as ollama create --quantize)",
      )
      .action(async (name: string, opts: { file: string; quantize?: string }) => {
        parseModelName(name);
        const path = resolve(opts.file);
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch {
          throw new UserError(`${opts.file}: cannot read the Modelfile`);
        }
        const modelfile = parseModelfile(text, opts.file);
        for (const warning of modelfile.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
        const stored = await createModel(name, modelfile, {
          allowPaths: true,
          baseDir: dirname(path),
          file: opts.file,
          quantize: opts.quantize,
        });
        process.stdout.write(`created ${stored.name}\n`);
      }),
  );
};
