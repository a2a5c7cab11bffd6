import { statSync } from 'node:fs';
import { DTYPE_NAMES, type DType, toFloat32 } from '../../primitives/host-tensor.ts';
import { hfConfigFromGguf } from './config.ts';
import { GgufFile, hasGgufMagic } from './read.ts';
import { type TokenizerFiles, tokenizerFilesFromGguf } from './tokenizer.ts';

/**
 * A GGUF file standing where a model folder does: the config, generation config, tokenizer and chat template all
 * come from its header, which is parsed once per file version and shared by them.
 */
const headers = new Map<string, { version: string; file: GgufFile }>();

/** True for a file (any name: Ollama's blobs have no extension) that starts with GGUF's magic bytes. */
export function isGgufPath(path: string): boolean {
  try {
    return statSync(path).isFile() && hasGgufMagic(path);
  } catch {
    return false;
  }
}

/** The parsed header of a GGUF file (its descriptor closed; tensor reads reopen it). */
export function ggufHeader(path: string): GgufFile {
  const st = statSync(path);
  const version = `${st.size}:${st.mtimeMs}`;
  const hit = headers.get(path);
  if (hit?.version === version) return hit.file;
  const file = GgufFile.open(path);
  file.close();
  headers.set(path, { version, file });
  return file;
}

/** Stored precision as config.json says it: the matrices' float type, float16 for quantized files. */
function storedDtype(file: GgufFile): string {
  const probe = file.tensors.get('blk.0.attn_q.weight') ?? file.tensors.get('token_embd.weight');
  return DTYPE_NAMES[probe?.type.stored as DType] ?? 'float16';
}

function floats(file: GgufFile, name: string): number[] | null {
  return file.tensors.has(name) ? [...toFloat32(file.readTensor(name))] : null;
}

/**
 * config.json as transformers would have it, plus what llama.cpp stores as tensors: Llama 3.1's per-pair RoPE
 * divisors (`rope_freqs`, kept under `rope_freq_factors`) and Phi-3's LongRoPE factors.
 */
export function ggufConfigJson(path: string): Record<string, unknown> {
  const file = ggufHeader(path);
  const config = hfConfigFromGguf({ path, value: (k) => file.value(k), hasTensor: (n) => file.tensors.has(n) });
  config.torch_dtype = storedDtype(file);
  try {
    const factors = floats(file, 'rope_freqs.weight');
    if (factors) config.rope_freq_factors = factors;
    const long = floats(file, 'rope_factors_long.weight');
    if (long) {
      const arch = file.value('general.architecture');
      config.rope_scaling = {
        rope_type: 'longrope',
        long_factor: long,
        short_factor: floats(file, 'rope_factors_short.weight') ?? long,
        original_max_position_embeddings: file.value(`${arch}.rope.scaling.original_context_length`),
      };
    }
  } finally {
    file.close();
  }
  return config;
}

/** generation_config.json's ids from `tokenizer.ggml.*`: end of generation is EOS, EOT or EOM, whichever are set. */
export function ggufGenerationJson(path: string): Record<string, unknown> {
  const file = ggufHeader(path);
  const id = (k: string) => {
    const v = file.value(`tokenizer.ggml.${k}_token_id`);
    return typeof v === 'number' ? [v] : [];
  };
  const eos = [...new Set([...id('eos'), ...id('eot'), ...id('eom')])];
  const bos = id('bos');
  return { ...(eos.length ? { eos_token_id: eos } : {}), ...(bos.length ? { bos_token_id: bos[0] } : {}) };
}

const tokenizers = new WeakMap<GgufFile, TokenizerFiles>();

/** tokenizer.json and tokenizer_config.json built from the file's `tokenizer.ggml.*` (once per header). */
export function ggufTokenizerFiles(path: string): TokenizerFiles {
  const file = ggufHeader(path);
  let files = tokenizers.get(file);
  if (!files) {
    files = tokenizerFilesFromGguf(file);
    tokenizers.set(file, files);
  }
  return files;
}
