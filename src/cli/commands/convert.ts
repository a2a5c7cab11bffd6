import { Command } from 'commander';
import { convertToGguf } from '../../loader/gguf/convert.ts';
import type { DType } from '../../primitives/host-tensor.ts';
import { UserError } from '../../util/errors.ts';
import type { RegisterCommand } from './index.ts';

const TYPES: Record<string, DType> = { f32: 'f32', f16: 'f16', bf16: 'bf16' };

/** `pagoda convert SOURCE OUT.gguf [--type f32|f16|bf16]` */
export const registerConvert: RegisterCommand = (program) => {
  program.addCommand(
    new Command('convert')
      .description('write a Hugging Face model folder as one GGUF file (tokenizer and chat template inside)')
      .argument('<source>', 'a Hugging Face model folder (config.json, safetensors, tokenizer.json)')
      .argument('<out>', 'the GGUF file to write')
      .option('--type <type>', 'weight type of the matrices: f32, f16 or bf16 (1-D tensors stay f32)', 'f16')
      .action((source: string, out: string, opts: { type: string }) => {
        const type = TYPES[opts.type.toLowerCase()];
        if (!type) throw new UserError(`--type ${opts.type}: expected one of ${Object.keys(TYPES).join(', ')}`);
        const { tensors, arch } = convertToGguf(source, out, type);
        process.stdout.write(`wrote ${out}: ${arch}, ${tensors} tensors, ${type.toUpperCase()}\n`);
      }),
  );
};
