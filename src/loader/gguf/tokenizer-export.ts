import { UserError } from '../../util/errors.ts';
import { type GgufValue, gguf } from './format.ts';
import { TOKEN_TYPE } from './tokenizer.ts';

/** transformers' pre-tokenizer regexes → the `tokenizer.ggml.pre` name llama.cpp gives them. */
const PRE_NAMES: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'qwen2',
};

interface HfBpeModel {
  type?: string;
  continuing_subword_prefix?: string;
  vocab?: Record<string, number>;
  merges?: (string | [string, string])[];
  byte_fallback?: boolean;
  unk_token?: string | null;
}

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

type Json = Record<string, unknown>;

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

/** The pre-tokenizer's name for llama.cpp: GPT-2's built-in ByteLevel regex, or a Split regex it knows. */
function preName(pre: Json | null, path: string): string {
  const steps = pre?.type === 'Sequence' ? (pre.pretokenizers as Json[]) : pre ? [pre] : [];
  const split = steps.find((s) => s.type === 'Split');
  const byteLevel = steps.find((s) => s.type === 'ByteLevel');
  if (!split && byteLevel?.use_regex !== false) return 'gpt-2';
  const regex = (split?.pattern as { Regex?: string } | undefined)?.Regex ?? '';
  const name = PRE_NAMES[regex];
  if (!name) throw new UserError(`${path}: its pre-tokenizer regex ${JSON.stringify(regex)} has no llama.cpp name`);
  return name;
}

/** True for a SentencePiece-style tokenizer (▁ for spaces, byte fallback), written as llama.cpp's `llama` model. */
function isSentencePiece(json: Json): boolean {
  return (json.model as HfBpeModel).byte_fallback === true || JSON.stringify(json.normalizer ?? '').includes('▁');
}

/** Whether the post-processor (or tokenizer_config.json's add_bos_token) puts `token` first. */
function adds(json: Json, config: Json, key: 'add_bos_token' | 'add_eos_token', token: string | undefined): boolean {
  if (typeof config[key] === 'boolean') return config[key] as boolean;
  if (!token) return false;
  const single = ((json.post_processor as Json | null)?.single ?? []) as Json[];
  const ids = single.map((s) => (s.SpecialToken as { id?: string } | undefined)?.id);
  return key === 'add_bos_token' ? ids[0] === token : ids.length > 1 && ids.at(-1) === token;
}

/**
 * A WordPiece tokenizer.json as llama.cpp's `bert` (WPM) model: control tokens as they are, word-initial pieces
 * behind ▁ and continuations without their `##`; the template's first and last special tokens are CLS and SEP.
 */
function wordPieceMetadata(json: Json, config: Json, vocabSize: number, path: string): Map<string, GgufValue> {
  const model = json.model as HfBpeModel;
  const prefix = model.continuing_subword_prefix ?? '##';
  const special = new Map(((json.added_tokens ?? []) as AddedToken[]).filter((t) => t.special).map((t) => [t.id, t]));
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `▁[PAD${i}]`);
  const types: number[] = tokens.map(() => TOKEN_TYPE.unused);
  for (const [text, id] of Object.entries(model.vocab ?? {})) {
    if (id >= vocabSize) throw new UserError(`${path}: token ${JSON.stringify(text)} has id ${id}, past ${vocabSize}`);
    const control = special.has(id);
    tokens[id] = control ? text : text.startsWith(prefix) ? text.slice(prefix.length) : `▁${text}`;
    types[id] = control ? TOKEN_TYPE.control : TOKEN_TYPE.normal;
  }
  const single = ((json.post_processor as Json | null)?.single ?? []) as Json[];
  const specialIds = single.flatMap((s) => {
    const id = (s.SpecialToken as { id?: string } | undefined)?.id;
    return id === undefined ? [] : [model.vocab?.[id]];
  });
  const idOf = (text: unknown) => (typeof text === 'string' ? model.vocab?.[text] : undefined);
  const cls = specialIds[0] ?? idOf(config.cls_token);
  const sep = specialIds.at(-1) ?? idOf(config.sep_token);
  // BOS and EOS too, as llama.cpp's converter writes them for BERT (its WPM defaults are bert-base's ids otherwise).
  const ids: [string, number | undefined][] = [
    ['cls', cls],
    ['seperator', sep],
    ['bos', cls],
    ['eos', sep],
    ['unknown', idOf(model.unk_token)],
    ['padding', idOf(config.pad_token)],
    ['mask', idOf(config.mask_token)],
  ];
  const meta = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str('bert')],
    ['tokenizer.ggml.pre', gguf.str('default')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.token_type', gguf.array('i32', types)],
  ]);
  for (const [key, id] of ids) if (id !== undefined) meta.set(`tokenizer.ggml.${key}_token_id`, gguf.u32(id));
  return meta;
}

/** A special token's id, given as text or as tokenizer_config.json's `{content}` object; undefined if not a token. */
function idIn(tokens: string[], token: unknown): number | undefined {
  const text = typeof token === 'string' ? token : (token as { content?: string } | null)?.content;
  const id = text === undefined ? -1 : tokens.indexOf(text);
  return id < 0 ? undefined : id;
}

/**
 * A Unigram tokenizer.json (XLM-R's SentencePiece) as llama.cpp's `t5` (UGM) model, as its converter writes one:
 * pieces with their scores and types, the precompiled charsmap's bytes, the space options from the normalizer and
 * Metaspace, and BOS/EOS added around each text.
 */
function unigramMetadata(json: Json, config: Json, vocabSize: number, path: string): Map<string, GgufValue> {
  const model = json.model as { vocab: [string, number][]; unk_id?: number | null };
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const scores: number[] = tokens.map(() => -10000);
  const types: number[] = tokens.map(() => TOKEN_TYPE.unused);
  const place = (text: string, id: number, score: number, type: number) => {
    if (id >= vocabSize) throw new UserError(`${path}: token ${JSON.stringify(text)} has id ${id}, past ${vocabSize}`);
    [tokens[id], scores[id], types[id]] = [text, score, type];
  };
  model.vocab.forEach(([text, score], id) => {
    place(text, id, score, id === model.unk_id ? TOKEN_TYPE.unknown : TOKEN_TYPE.normal);
  });
  for (const t of (json.added_tokens ?? []) as AddedToken[]) {
    if (t.id === model.unk_id) continue;
    place(t.content, t.id, 0, t.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined);
  }
  const normalizer = json.normalizer as Json | null;
  const steps = normalizer?.type === 'Sequence' ? (normalizer.normalizers as Json[]) : normalizer ? [normalizer] : [];
  const charsmap = steps.find((n) => n.type === 'Precompiled')?.precompiled_charsmap;
  const collapses = steps.some((n) => n.type === 'Replace' && (n.pattern as Json).Regex === ' {2,}');
  const pre = JSON.stringify(json.pre_tokenizer ?? {});
  const idOf = (token: unknown) => idIn(tokens, token);
  const bos = idOf(config.bos_token) ?? idOf(config.cls_token);
  const eos = idOf(config.eos_token) ?? idOf(config.sep_token);
  const meta = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str('t5')],
    ['tokenizer.ggml.pre', gguf.str('default')],
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.scores', gguf.array('f32', scores)],
    ['tokenizer.ggml.token_type', gguf.array('i32', types)],
    ['tokenizer.ggml.add_space_prefix', gguf.bool(!pre.includes('"prepend_scheme":"never"'))],
    ['tokenizer.ggml.remove_extra_whitespaces', gguf.bool(collapses)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(bos !== undefined)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(eos !== undefined)],
  ]);
  if (typeof charsmap === 'string') {
    meta.set('tokenizer.ggml.precompiled_charsmap', gguf.array('u8', [...Buffer.from(charsmap, 'base64')]));
  }
  const ids: [string, number | undefined][] = [
    ['bos', bos],
    ['eos', eos],
    ['seperator', idOf(config.sep_token) ?? eos],
    ['cls', idOf(config.cls_token) ?? bos],
    ['unknown', model.unk_id ?? undefined],
    ['padding', idOf(config.pad_token)],
    ['mask', idOf(config.mask_token)],
  ];
  for (const [key, id] of ids) if (id !== undefined) meta.set(`tokenizer.ggml.${key}_token_id`, gguf.u32(id));
  return meta;
}

/**
 * `tokenizer.ggml.*` for a tokenizer.json: WordPiece as llama.cpp's `bert` model (wordPieceMetadata), Unigram as its
 * `t5` model (unigramMetadata), byte-level BPE as llama.cpp's `gpt2` model (merges, pre-tokenizer name),
 * SentencePiece-style BPE as its `llama` model (scores ranking each merged piece by its merge's rank, so llama.cpp's
 * highest-score-first merging follows the merge order). The vocabulary is padded to `vocabSize` (the embedding rows)
 * with unused placeholders, as llama.cpp's converter does.
 */
export function ggufTokenizerMetadata(
  json: Json,
  config: Json,
  eosIds: readonly number[],
  vocabSize: number,
  path: string,
): Map<string, GgufValue> {
  const model = json.model as HfBpeModel;
  if (model?.type === 'WordPiece' && model.vocab) return wordPieceMetadata(json, config, vocabSize, path);
  if (model?.type === 'Unigram' && Array.isArray(model.vocab)) return unigramMetadata(json, config, vocabSize, path);
  if (model?.type !== 'BPE' || !model.vocab) {
    throw new UserError(
      `${path}: a ${model?.type ?? 'missing'} tokenizer model cannot be written to GGUF (expected BPE, WordPiece or Unigram)`,
    );
  }
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: number[] = tokens.map(() => TOKEN_TYPE.unused);
  const place = (text: string, id: number, type: number) => {
    if (id >= vocabSize)
      throw new UserError(
        `${path}: token ${JSON.stringify(text)} has id ${id}, past the model's ${vocabSize} embedding rows`,
      );
    tokens[id] = text;
    types[id] = type;
  };
  const spm = isSentencePiece(json);
  for (const [text, id] of Object.entries(model.vocab)) {
    place(text, id, spm && BYTE_TOKEN.test(text) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal);
  }
  for (const t of (json.added_tokens ?? []) as AddedToken[]) {
    const type =
      t.content === model.unk_token ? TOKEN_TYPE.unknown : t.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    place(t.content, t.id, type);
  }
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const idOf = (token: unknown) => idIn(tokens, token);
  const bosText = typeof config.bos_token === 'string' ? config.bos_token : undefined;
  const eosText = typeof config.eos_token === 'string' ? config.eos_token : undefined;
  const bos = idOf(config.bos_token);
  const eos = eosIds[0] ?? idOf(config.eos_token);
  const meta = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', gguf.str(spm ? 'llama' : 'gpt2')],
    ...(spm ? [] : ([['tokenizer.ggml.pre', gguf.str(preName(json.pre_tokenizer as Json | null, path))]] as const)),
    ['tokenizer.ggml.tokens', gguf.array('string', tokens)],
    ['tokenizer.ggml.token_type', gguf.array('i32', types)],
  ]);
  if (spm) {
    // A piece scores minus the rank of the merge that makes it; pieces no merge makes score lowest.
    const score = new Map<string, number>();
    merges.forEach((m, rank) => {
      const piece = m.replace(' ', '');
      if (!score.has(piece)) score.set(piece, -rank);
    });
    meta.set(
      'tokenizer.ggml.scores',
      gguf.array(
        'f32',
        tokens.map((t) => score.get(t) ?? -1e9),
      ),
    );
    const prefix = JSON.stringify(json.normalizer ?? '').includes('Prepend');
    meta.set('tokenizer.ggml.add_space_prefix', gguf.bool(prefix));
  } else {
    meta.set('tokenizer.ggml.merges', gguf.array('string', merges));
  }
  if (bos !== undefined) meta.set('tokenizer.ggml.bos_token_id', gguf.u32(bos));
  if (eos !== undefined) meta.set('tokenizer.ggml.eos_token_id', gguf.u32(eos));
  if (eosIds.length > 1) meta.set('tokenizer.ggml.eot_token_id', gguf.u32(eosIds[1]!));
  const unk = idOf(model.unk_token ?? undefined);
  if (unk !== undefined) meta.set('tokenizer.ggml.unknown_token_id', gguf.u32(unk));
  const pad = idOf(config.pad_token);
  if (pad !== undefined) meta.set('tokenizer.ggml.padding_token_id', gguf.u32(pad));
  meta.set(
    'tokenizer.ggml.add_bos_token',
    gguf.bool(bos !== undefined && adds(json, config, 'add_bos_token', bosText)),
  );
  meta.set(
    'tokenizer.ggml.add_eos_token',
    gguf.bool(eos !== undefined && adds(json, config, 'add_eos_token', eosText)),
  );
  return meta;
}
