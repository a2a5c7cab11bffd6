/** What show and /api/show need of a GGUF header (the loader's parsed GGUF file has this shape). */
export interface GgufHeaderView {
  readonly metadata: ReadonlyMap<string, { readonly value: unknown }>;
  readonly tensors: ReadonlyMap<string, { readonly dims: readonly number[]; readonly type: { readonly name: string } }>;
}

/** A GGUF model as Ollama describes it. */
export interface GgufSummary {
  /** `general.architecture`. */
  family: string;
  /** Weights counted over the tensors. */
  parameterCount: number;
  /** The file type as Ollama prints it: `Q4_K_M`, `Q8_0`, `F16`. */
  quantization: string;
  /** `<arch>.context_length`, or null when the file does not say. */
  contextLength: number | null;
  /** Ollama's model_info: the metadata, long arrays (the vocabulary) left out as null. */
  modelInfo: Record<string, unknown>;
}

/** llama.cpp's `general.file_type` (enum llama_ftype) under the names Ollama gives them. */
const FILE_TYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  7: 'Q8_0',
  8: 'Q5_0',
  9: 'Q5_1',
  10: 'Q2_K',
  11: 'Q3_K_S',
  12: 'Q3_K_M',
  13: 'Q3_K_L',
  14: 'Q4_K_S',
  15: 'Q4_K_M',
  16: 'Q5_K_S',
  17: 'Q5_K_M',
  18: 'Q6_K',
  19: 'IQ2_XXS',
  20: 'IQ2_XS',
  21: 'Q2_K_S',
  22: 'IQ3_XS',
  23: 'IQ3_XXS',
  24: 'IQ1_S',
  25: 'IQ4_NL',
  26: 'IQ3_S',
  27: 'IQ3_M',
  28: 'IQ2_S',
  29: 'IQ2_M',
  30: 'IQ4_XS',
  31: 'IQ1_M',
  32: 'BF16',
  36: 'TQ1_0',
  37: 'TQ2_0',
};

/** Arrays longer than this (tokens, merges, scores) are left out of model_info, as Ollama does unless verbose. */
const MAX_SHOWN_ARRAY = 64;

export function summarizeGguf(header: GgufHeaderView): GgufSummary {
  const value = (key: string): unknown => header.metadata.get(key)?.value;
  const family = String(value('general.architecture') ?? 'unknown');
  let parameterCount = 0;
  for (const t of header.tensors.values()) parameterCount += t.dims.reduce((a, b) => a * b, 1);
  const fileType = value('general.file_type');
  const context = value(`${family}.context_length`);
  const modelInfo: Record<string, unknown> = {};
  for (const [key, { value: v }] of header.metadata) {
    modelInfo[key] = Array.isArray(v) ? (v.length > MAX_SHOWN_ARRAY ? null : v.map(plain)) : plain(v);
  }
  modelInfo['general.parameter_count'] = parameterCount;
  return {
    family,
    parameterCount,
    quantization: FILE_TYPES[Number(fileType)] ?? dominantType(header),
    contextLength: context === undefined ? null : Number(context),
    modelInfo,
  };
}

/** u64 values arrive as bigints; JSON wants numbers. */
function plain(v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Without `general.file_type`: the type most of the weights are stored in. */
function dominantType(header: GgufHeaderView): string {
  const count = new Map<string, number>();
  for (const t of header.tensors.values()) {
    count.set(t.type.name, (count.get(t.type.name) ?? 0) + t.dims.reduce((a, b) => a * b, 1));
  }
  return [...count].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'unknown';
}
