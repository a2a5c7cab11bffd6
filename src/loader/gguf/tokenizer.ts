import { UserError } from '../../util/errors.ts';
import { bpeModelJson } from '../bpe-model-json.ts';
import { PRE_TOKENIZERS } from './pre-tokenizers.ts';
import type { GgufFile } from './read.ts';

/** llama.cpp's token types (`tokenizer.ggml.token_type`). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** tokenizer.json and tokenizer_config.json as a Hugging Face folder would hold them. */
export interface TokenizerFiles {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
}

interface Vocab {
  tokens: string[];
  types: number[];
  path: string;
  id(key: string): number | null;
  flag(key: string): boolean | undefined;
}

function readVocab(file: GgufFile): Vocab {
  const tokens = file.value('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) {
    throw new UserError(`${file.path}: metadata tokenizer.ggml.tokens is missing (expected an array of strings)`);
  }
  const rawTypes = file.value('tokenizer.ggml.token_type');
  const types = Array.isArray(rawTypes) ? rawTypes.map(Number) : tokens.map(() => TOKEN_TYPE.normal);
  if (types.length !== tokens.length) {
    throw new UserError(
      `${file.path}: tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`,
    );
  }
  return {
    tokens: tokens as string[],
    types,
    path: file.path,
    id: (key) => {
      const v = file.value(`tokenizer.ggml.${key}_token_id`);
      return typeof v === 'number' && v >= 0 && v < tokens.length ? v : null;
    },
    flag: (key) => {
      const v = file.value(`tokenizer.ggml.${key}`);
      return typeof v === 'boolean' ? v : undefined;
    },
  };
}

/** Control, unknown and user-defined tokens are matched in text before the model sees it. */
function addedTokens(v: Vocab): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  v.types.forEach((type, id) => {
    if (type !== TOKEN_TYPE.control && type !== TOKEN_TYPE.unknown && type !== TOKEN_TYPE.userDefined) return;
    if (v.tokens[id] === '') return;
    out.push({
      id,
      content: v.tokens[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: type !== TOKEN_TYPE.userDefined,
    });
  });
  return out;
}

/**
 * SentencePiece-BPE's merges from piece scores, as transformers' GGUF converter builds them: every split of a piece
 * into two pieces of the vocabulary, ranked by the merged piece's score (higher first), so BPE merges the pair whose
 * result scores highest, as llama.cpp's SPM tokenizer does.
 */
function mergesFromScores(tokens: string[], scores: number[], types: number[]): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === TOKEN_TYPE.normal || types[i] === TOKEN_TYPE.userDefined) ids.set(t, i);
  });
  const merges: { l: string; r: string; score: number; id: number; lid: number; rid: number }[] = [];
  for (const [piece, id] of ids) {
    const chars = [...piece];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join('');
      const r = chars.slice(i).join('');
      const lid = ids.get(l);
      const rid = ids.get(r);
      if (lid !== undefined && rid !== undefined) merges.push({ l, r, score: scores[id] ?? 0, id, lid, rid });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.lid - b.lid || a.rid - b.rid);
  return merges.map((m) => [m.l, m.r]);
}

/** Each token's id by its text, as tokenizer.json's model.vocab holds them. */
function vocabIds(v: Vocab): Record<string, number> {
  return Object.fromEntries(v.tokens.map((t, i) => [t, i]));
}

function spmTokenizer(file: GgufFile, v: Vocab): TokenizerFiles {
  const scores = (file.value('tokenizer.ggml.scores') as number[] | undefined) ?? v.tokens.map(() => 0);
  const addPrefix = v.flag('add_space_prefix') ?? true;
  const unk = v.id('unknown') ?? 0;
  const json = {
    version: '1.0',
    added_tokens: addedTokens(v),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(addPrefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: bpeModelJson(vocabIds(v), mergesFromScores(v.tokens, scores, v.types), {
      unkToken: v.tokens[unk],
      byteFallback: true,
    }),
  };
  return { json, config: specialsConfig(v, { addBos: true, addEos: false, cleanSpaces: false }) };
}

function bpeTokenizer(file: GgufFile, v: Vocab): TokenizerFiles {
  const pre = String(file.value('tokenizer.ggml.pre') ?? 'default');
  const spec = PRE_TOKENIZERS[pre];
  if (!spec) {
    throw new UserError(
      `${file.path}: tokenizer.ggml.pre "${pre}" is not supported (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
    );
  }
  const merges = file.value('tokenizer.ggml.merges');
  if (!Array.isArray(merges)) throw new UserError(`${file.path}: metadata tokenizer.ggml.merges is missing`);
  const json = {
    version: '1.0',
    added_tokens: addedTokens(v),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...spec.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: bpeModelJson(vocabIds(v), merges.map(String), { ignoreMerges: spec.ignoreMerges ?? false }),
  };
  const defaults = { addBos: spec.addBos ?? false, addEos: false, cleanSpaces: spec.cleanSpaces ?? true };
  return { json, config: specialsConfig(v, defaults) };
}

/**
 * llama.cpp's WPM vocabulary back to WordPiece's: its converter marks word-initial pieces with a leading ▁ and
 * strips `##` from continuations; control tokens ([CLS], [SEP], ...) are stored as they are.
 */
function wordPieceTokens(v: Vocab): string[] {
  return v.tokens.map((t, id) => {
    if (v.types[id] === TOKEN_TYPE.control) return t;
    return t.startsWith('▁') ? t.slice(1) : `##${t}`;
  });
}

/**
 * A WordPiece tokenizer.json: BERT's normalizer (lowercasing and accent stripping for an uncased vocabulary, which
 * has no upper-case piece), pre-tokenizer and [CLS] $A [SEP] template with the file's ids.
 */
function wordPieceTokenizer(file: GgufFile, v: Vocab): TokenizerFiles {
  const bert = { ...v, tokens: wordPieceTokens(v) };
  const cls = v.id('cls') ?? v.id('bos');
  const sep = v.id('seperator') ?? v.id('eos');
  const unk = v.id('unknown');
  if (cls === null || sep === null || unk === null) {
    throw new UserError(
      `${file.path}: a bert tokenizer needs tokenizer.ggml.cls_token_id, seperator_token_id and unknown_token_id`,
    );
  }
  // One token type: an XLM-R (RoBERTa) model, whose pairs are <s> A </s></s> B </s> (what llama.cpp's rerank
  // prompt, BOS A EOS SEP B EOS, gives too).
  const roberta = file.value('tokenizer.ggml.token_type_count') === 1;
  const cased = bert.tokens.some((t, id) => v.types[id] === TOKEN_TYPE.normal && t !== t.toLowerCase());
  const special = (id: number, typeId: number) => ({ SpecialToken: { id: bert.tokens[id], type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const json = {
    version: '1.0',
    added_tokens: addedTokens(bert),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: !cased,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(cls, 0), seq('A', 0), special(sep, 0)],
      pair: roberta
        ? [special(cls, 0), seq('A', 0), special(sep, 0), special(sep, 0), seq('B', 0), special(sep, 0)]
        : [special(cls, 0), seq('A', 0), special(sep, 0), seq('B', 1), special(sep, 1)],
      special_tokens: Object.fromEntries(
        [cls, sep].map((id) => [bert.tokens[id], { id: bert.tokens[id], ids: [id], tokens: [bert.tokens[id]] }]),
      ),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: bert.tokens[unk],
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: vocabIds(bert),
    },
  };
  const text = (id: number | null) => (id === null ? undefined : bert.tokens[id]);
  const config = {
    cls_token: text(cls),
    sep_token: text(sep),
    unk_token: text(unk),
    pad_token: text(v.id('padding')),
    mask_token: text(v.id('mask')),
    do_lower_case: !cased,
  };
  return { json, config };
}

/**
 * llama.cpp's UGM (`t5`) vocabulary, XLM-R's SentencePiece Unigram, as a Unigram tokenizer.json. Only normal pieces
 * are matched there, so the others take the lowest normal score (which sets the unknown piece's, 10 below it).
 * Normalization as llama.cpp's: the precompiled charsmap (which tokenizers.js approximates with NFKC), extra
 * whitespace removed, spaces as ▁ and one prepended; XLM-R's `<s> A </s>` / `<s> A </s></s> B </s>` templates.
 */
function unigramTokenizer(file: GgufFile, v: Vocab): TokenizerFiles {
  const raw = file.value('tokenizer.ggml.scores');
  const scores = Array.isArray(raw) ? raw.map(Number) : v.tokens.map(() => 0);
  const [bos, eos, unk] = [v.id('bos'), v.id('eos'), v.id('unknown')];
  const sep = v.id('seperator') ?? eos;
  if (bos === null || eos === null || sep === null || unk === null) {
    throw new UserError(
      `${file.path}: a t5 tokenizer needs tokenizer.ggml.bos_token_id, eos_token_id and unknown_token_id`,
    );
  }
  // A loop, not Math.min(...scores): XLM-R's 250k scores are past what a call's arguments may hold.
  const floor = scores.reduce((m, s, id) => (v.types[id] === TOKEN_TYPE.normal && s < m ? s : m), Infinity);
  const charsmap = file.value('tokenizer.ggml.precompiled_charsmap');
  const prepend = (v.flag('add_space_prefix') ?? true) ? 'always' : 'never';
  const metaspace = { type: 'Metaspace', replacement: '▁', prepend_scheme: prepend, split: false };
  const special = (id: number) => ({ SpecialToken: { id: v.tokens[id], type_id: 0 } });
  const seq = (id: 'A' | 'B') => ({ Sequence: { id, type_id: 0 } });
  const json = {
    version: '1.0',
    added_tokens: addedTokens(v),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(Array.isArray(charsmap) && charsmap.length > 0
          ? [{ type: 'Precompiled', precompiled_charsmap: Buffer.from(charsmap.map(Number)).toString('base64') }]
          : []),
        ...((v.flag('remove_extra_whitespaces') ?? true)
          ? [
              { type: 'Strip', strip_left: true, strip_right: true },
              { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
            ]
          : []),
      ],
    },
    pre_tokenizer: metaspace,
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(bos), seq('A'), special(eos)],
      pair: [special(bos), seq('A'), special(eos), special(sep), seq('B'), special(eos)],
      special_tokens: Object.fromEntries(
        [...new Set([bos, eos, sep])].map((id) => [
          v.tokens[id],
          { id: v.tokens[id], ids: [id], tokens: [v.tokens[id]] },
        ]),
      ),
    },
    decoder: metaspace,
    model: {
      type: 'Unigram',
      unk_id: unk,
      byte_fallback: false,
      vocab: v.tokens.map((t, id) => [t, v.types[id] === TOKEN_TYPE.normal ? scores[id] : floor]),
    },
  };
  const text = (id: number | null) => (id === null ? undefined : v.tokens[id]);
  const config = {
    bos_token: text(bos),
    eos_token: text(eos),
    sep_token: text(sep),
    cls_token: text(v.id('cls') ?? bos),
    unk_token: text(unk),
    pad_token: text(v.id('padding')),
    mask_token: text(v.id('mask')),
  };
  return { json, config };
}

/** tokenizer_config.json: the special tokens' texts, add_bos/add_eos as llama.cpp decides them, the chat template. */
function specialsConfig(v: Vocab, defaults: { addBos: boolean; addEos: boolean; cleanSpaces: boolean }) {
  const text = (key: string) => {
    const id = v.id(key);
    return id === null ? undefined : v.tokens[id];
  };
  return {
    bos_token: text('bos'),
    eos_token: text('eos'),
    unk_token: text('unknown'),
    pad_token: text('padding'),
    add_bos_token: (v.flag('add_bos_token') ?? defaults.addBos) && v.id('bos') !== null,
    add_eos_token: (v.flag('add_eos_token') ?? defaults.addEos) && v.id('eos') !== null,
    clean_up_tokenization_spaces: defaults.cleanSpaces,
  };
}

/** The Hugging Face tokenizer files equivalent to a GGUF file's `tokenizer.ggml.*` and `tokenizer.chat_template`. */
export function tokenizerFilesFromGguf(file: GgufFile): TokenizerFiles {
  const model = file.value('tokenizer.ggml.model');
  const v = readVocab(file);
  let files: TokenizerFiles;
  if (model === 'llama') files = spmTokenizer(file, v);
  else if (model === 'gpt2') files = bpeTokenizer(file, v);
  else if (model === 'bert') files = wordPieceTokenizer(file, v);
  else if (model === 't5') files = unigramTokenizer(file, v);
  else {
    throw new UserError(
      `${file.path}: tokenizer.ggml.model "${String(model)}" is not supported (supported: llama, gpt2, bert, t5)`,
    );
  }
  const template = file.value('tokenizer.chat_template');
  if (typeof template === 'string') files.config.chat_template = template;
  return files;
}
