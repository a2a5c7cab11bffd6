import { Command } from 'commander';
import { loadChatTemplate } from '../../loader/chat-template.ts';
import { ggufHeader } from '../../loader/gguf/files.ts';
import { loadModelConfig } from '../../loader/hf-config.ts';
import { summarizeGguf } from '../../store/gguf-summary.ts';
import { formatModelfile, formatParameters } from '../../store/modelfile.ts';
import { resolveModel } from '../../store/resolve.ts';
import { summarizeSafetensors } from '../../store/safetensors-summary.ts';
import { formatTable } from '../progress.ts';
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
        const model = resolveModel(ref, { allowPaths: true });
        const m = model.manifest;
        const out = (text: string): void => {
          process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
        };
        if (opts.modelfile) {
          return out(formatModelfile(m ?? { from: model.path, parameters: {}, messages: [], license: [] }));
        }
        if (opts.parameters) return out(formatParameters(m?.parameters ?? {}).join('\n'));
        if (opts.template) return out(m?.template ?? loadChatTemplate(model.path)?.source ?? '');
        if (opts.system) return out(m?.system ?? '');
        if (opts.license) return out((m?.license ?? []).join('\n'));
        const config = loadModelConfig(model.path);
        // A GGUF file counts its own weights and names its quantization (Q4_K_M, not the dtype they compute in).
        const gguf = model.format === 'gguf' ? summarizeGguf(ggufHeader(model.path)) : null;
        const folder = gguf ? null : summarizeSafetensors(model.path, config);
        const params = gguf?.parameterCount ?? folder?.parameterCount ?? 0;
        const section = (title: string, rows: string[][]) =>
          rows.length ? `  ${title}\n${formatTable(rows).replace(/^/gm, '    ')}\n\n` : '';
        let text = section('Model', [
          ['architecture', config.modelType || config.architecture],
          ['parameters', params >= 1e9 ? `${(params / 1e9).toFixed(1)}B` : `${(params / 1e6).toFixed(1)}M`],
          ['context length', String(config.maxPositionEmbeddings)],
          ['embedding length', String(config.hiddenSize)],
          ['quantization', gguf?.quantization ?? (folder?.quantization ?? config.dtype).toUpperCase()],
          ['path', model.path],
        ]);
        if (m) {
          text += section(
            'Parameters',
            formatParameters(m.parameters).map((l) => [l.split(' ')[0]!, l.slice(l.indexOf(' ') + 1)]),
          );
          if (m.system) text += `  System\n    ${m.system.replace(/\n/g, '\n    ')}\n\n`;
          if (m.license.length)
            text += `  License\n    ${m.license.join('\n').split('\n').slice(0, 2).join('\n    ')}\n\n`;
        }
        out(text.trimEnd());
      }),
  );
};
