import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toFloat32 } from '../../primitives/host-tensor.ts';
import { quantize } from '../../primitives/quant/index.ts';
import { ggufWeightRole, type QuantScheme, quantTypeFor } from '../../primitives/quant/mix.ts';
import { UserError } from '../../util/errors.ts';
import { convertToGguf } from './convert.ts';
import type { GgufValue } from './format.ts';
import { GgufFile } from './read.ts';
import { type GgufTensorOut, writeGguf } from './write.ts';

/** What `quantizeToGguf` wrote: tensor counts and the type each quantized matrix got. */
export interface QuantizeReport {
  tensors: number;
  quantized: number;
  types: Record<string, number>;
}

/**
 * Writes `source` (a GGUF file, or a Hugging Face folder, converted to F32 GGUF first) as a GGUF file of `scheme`:
 * each matrix gets the type llama.cpp's mix rules give it (mix.ts), everything else is copied as it is; metadata is
 * kept, with `general.file_type` set to the scheme's. Tensors are read, quantized and written one at a time.
 */
export function quantizeToGguf(source: string, out: string, scheme: QuantScheme): QuantizeReport {
  if (!existsSync(source))
    throw new UserError(`${source}: no such file or folder (expected a GGUF file or a model folder)`);
  if (!statSync(source).isFile()) {
    const dir = mkdtempSync(join(tmpdir(), 'pagoda-quantize-'));
    try {
      const f32 = join(dir, 'model-f32.gguf');
      convertToGguf(source, f32, 'f32');
      return quantizeToGguf(f32, out, scheme);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const file = GgufFile.open(source);
  try {
    const arch = String(file.value('general.architecture'));
    const num = (key: string) => Number(file.value(`${arch}.${key}`) ?? 0);
    const heads = num('attention.head_count');
    const model = {
      numLayers: num('block_count'),
      gqa: heads / (num('attention.head_count_kv') || heads) || 1,
      experts: num('expert_count'),
      hasOutput: file.tensors.has('output.weight'),
    };
    const report: QuantizeReport = { tensors: 0, quantized: 0, types: {} };
    const tensors: GgufTensorOut[] = [...file.tensors.values()].map((info) => {
      const shape = [...info.dims].reverse();
      // Matrices, and experts' matrices stacked [E, rows, cols]: blocks run along each row either way.
      const role = shape.length >= 2 ? ggufWeightRole(info.name, { ...model, cols: shape.at(-1)! }) : null;
      const type = role ? quantTypeFor(scheme, role) : null;
      report.tensors++;
      if (!type) return { name: info.name, shape, dtype: file.tensorAt(info).dtype, bytes: () => file.readBytes(info) };
      report.quantized++;
      report.types[type] = (report.types[type] ?? 0) + 1;
      return {
        name: info.name,
        shape,
        dtype: type,
        bytes: () => quantize(type, toFloat32(file.tensorAt(info)), info.name),
      };
    });
    const metadata = new Map<string, GgufValue>(file.metadata);
    metadata.set('general.file_type', { type: 'u32', value: scheme.fileType });
    metadata.set('general.quantization_version', { type: 'u32', value: 2 });
    writeGguf(out, metadata, tensors);
    return report;
  } finally {
    file.close();
  }
}
