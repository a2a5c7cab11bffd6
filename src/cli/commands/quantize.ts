import { Command } from 'commander';
import { dummyGguf } from '../../loader/gguf/dummy.ts';
import { ggufHeader, isGgufPath } from '../../loader/gguf/files.ts';
import { quantizeToGguf } from '../../loader/gguf/quantize.ts';
import type { GgufTensorInfo } from '../../loader/gguf/read.ts';
import { parseQuantization } from '../../primitives/quant/mix.ts';
import { UserError } from '../../util/errors.ts';
import type { RegisterCommand } from './index.ts';

interface QuantizeFlags {
  type: string;
  loadFormat: string;
  vocab?: string;
  allowRequantize?: boolean;
}

/** `pagoda quantize SOURCE OUT.gguf --type q4_k_m` */
export const registerQuantize: RegisterCommand = (program) => {
  program.addCommand(
    new Command('quantize')
      .description("write a GGUF file or a Hugging Face folder as a quantized GGUF file (llama.cpp's types and mixes)")
      .argument('<source>', 'a GGUF file or a Hugging Face model folder')
      .argument('<out>', 'the GGUF file to write')
      .requiredOption('--type <type>', 'q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_m, q4_k_m, q5_k_m or q6_k')
      .option('--load-format <format>', 'auto, or dummy: random weights for a folder with only config.json', 'auto')
      .option('--vocab <dir>', 'with --load-format dummy: a folder whose tokenizer.json gives the vocabulary')
      .option('--allow-requantize', 'quantize a source that is quantized already (it loses quality twice)')
      .action((source: string, out: string, opts: QuantizeFlags) => {
        const scheme = parseQuantization(opts.type, '--type');
        const quantized = opts.allowRequantize ? undefined : firstQuantized(source);
        if (quantized) {
          throw new UserError(
            `${source} is quantized already (${quantized.name} is ${quantized.type.name}): pass --allow-requantize to quantize it again`,
          );
        }
        if (opts.loadFormat !== 'auto' && opts.loadFormat !== 'dummy') {
          throw new UserError(`--load-format ${opts.loadFormat}: expected auto or dummy`);
        }
        const dummy = opts.loadFormat === 'dummy';
        if (dummy !== (opts.vocab !== undefined)) {
          throw new UserError(
            '--vocab DIR (the tokenizer.json to write) goes with --load-format dummy, and it needs one',
          );
        }
        const r = dummy ? dummyGguf(source, out, scheme, opts.vocab!) : quantizeToGguf(source, out, scheme);
        const types = Object.entries(r.types)
          .map(([t, n]) => `${n} ${t.toUpperCase()}`)
          .join(', ');
        process.stdout.write(`wrote ${out}: ${scheme.name}, ${r.tensors} tensors (${types || 'none quantized'})\n`);
      }),
  );
};

/** A GGUF source's first block-quantized tensor (llama.cpp's quantize refuses such a source unless told). */
function firstQuantized(source: string): GgufTensorInfo | undefined {
  if (!isGgufPath(source)) return undefined;
  return [...ggufHeader(source).tensors.values()].find((t) => t.type.blockSize > 1);
}
