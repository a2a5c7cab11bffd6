import { loadChatTemplate } from '../loader/chat-template.ts';
import { ggufHeader } from '../loader/gguf/files.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { summarizeGguf } from '../store/gguf-summary.ts';
import { formatModelfile, formatParameters } from '../store/modelfile.ts';
import { resolveModel } from '../store/resolve.ts';
import { summarizeSafetensors } from '../store/safetensors-summary.ts';
import { formatTable } from './progress.ts';

/** What `pagoda show` (and the chat's `/show`) can print: the summary, or one part of the model. */
export const SHOW_PARTS = ['modelfile', 'parameters', 'template', 'system', 'license'] as const;
export type ShowPart = (typeof SHOW_PARTS)[number];

/** The text `pagoda show MODEL [--PART]` prints for a model reference (name, folder or GGUF file). */
export function describeModel(ref: string, part?: ShowPart): string {
  const model = resolveModel(ref, { allowPaths: true });
  const m = model.manifest;
  switch (part) {
    case 'modelfile':
      return formatModelfile(m ?? { from: model.path, parameters: {}, messages: [], license: [] });
    case 'parameters':
      return formatParameters(m?.parameters ?? {}).join('\n');
    case 'template':
      return m?.template ?? loadChatTemplate(model.path)?.source ?? '';
    case 'system':
      return m?.system ?? '';
    case 'license':
      return (m?.license ?? []).join('\n');
  }
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
    if (m.license.length) text += `  License\n    ${m.license.join('\n').split('\n').slice(0, 2).join('\n    ')}\n\n`;
  }
  return text.trimEnd();
}
