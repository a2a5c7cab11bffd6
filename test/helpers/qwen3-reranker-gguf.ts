import { ggufHeader } from '../../src/loader/gguf/files.ts';
import { type GgufValue, gguf } from '../../src/loader/gguf/format.ts';
import { type GgufTensorOut, writeGguf } from '../../src/loader/gguf/write.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';

export interface RerankerGgufOptions {
  /** `tokenizer.chat_template.rerank`; null: none written. */
  template: string | null;
  /** The LM head rows `cls.output` is made of ("yes", then "no", as the converter stacks them). */
  rows: readonly number[];
}

/**
 * Rewrites a qwen3 (or other decoder's) GGUF that generates (`generating`, as `pagoda convert` writes one) as llama.cpp's converter writes a
 * Qwen3-Reranker: rank pooling, output labels yes / no, the rerank template, and `cls.output.weight` made of the LM
 * head's rows (`output.weight`, kept as the converter keeps it only for tied heads: dropped here, as for an untied one).
 * F32 throughout, as the source.
 */
export function writeQwen3Reranker(generating: string, out: string, opts: RerankerGgufOptions): void {
  const file = ggufHeader(generating);
  const meta = new Map<string, GgufValue>(file.metadata);
  const arch = String(file.value('general.architecture'));
  meta.set(`${arch}.pooling_type`, gguf.u32(4));
  meta.set(`${arch}.classifier.output_labels`, gguf.array('string', ['yes', 'no']));
  if (opts.template !== null) meta.set('tokenizer.chat_template.rerank', gguf.str(opts.template));
  const head = file.readTensor('output.weight');
  const [, hidden] = head.shape as [number, number];
  const lm = toFloat32(head);
  const cls = new Float32Array(opts.rows.length * hidden);
  for (const [i, r] of opts.rows.entries()) cls.set(lm.subarray(r * hidden, (r + 1) * hidden), i * hidden);
  const tensors: GgufTensorOut[] = [...file.tensors.keys()]
    .filter((name) => name !== 'output.weight')
    .map((name) => {
      const t = file.readTensor(name);
      const bytes = () => {
        const v = toFloat32(t);
        return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      };
      return { name, shape: t.shape, dtype: 'f32', bytes };
    });
  tensors.push({
    name: 'cls.output.weight',
    shape: [opts.rows.length, hidden],
    dtype: 'f32',
    bytes: () => new Uint8Array(cls.buffer),
  });
  writeGguf(out, meta, tensors);
  file.close();
}
