/**
 * The pre-tokenizers `tokenizer.ggml.pre` names, as llama.cpp's llama-vocab.cpp defines them: each regex splits the
 * pieces the previous one left (matches and the text between them both kept), then bytes go through GPT-2's
 * byte-to-unicode table. Flags as llama.cpp sets them per name.
 */
export interface PreTokenizerSpec {
  regexes: readonly string[];
  /** A whole pre-token found in the vocabulary is taken as is, before any merge (Llama 3, Tekken). */
  ignoreMerges?: boolean;
  /** clean_up_tokenization_spaces when decoding (llama.cpp's default for BPE is true). */
  cleanSpaces?: boolean;
  /** BOS is added unless `tokenizer.ggml.add_bos_token` says otherwise. */
  addBos?: boolean;
}

const CONTRACTIONS_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const LLAMA3 = String.raw`${CONTRACTIONS_CI}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 = String.raw`${CONTRACTIONS_CI}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const CJK = '[一-龥ࠀ-一가-퟿]+';
const PORO = String.raw` ?[^(\s|.,!?…。，、।۔،)]+`;
const TEKKEN = String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const DEEPSEEK_LLM_LETTERS =
  'A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃';

const DEFAULT: PreTokenizerSpec = {
  regexes: [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, '[0-9][0-9][0-9]'],
};
const STARCODER: PreTokenizerSpec = { regexes: [String.raw`\p{N}`, GPT2] };
const STARCODER_KEEP_SPACES: PreTokenizerSpec = { ...STARCODER, cleanSpaces: false };
const GPT2_SPEC: PreTokenizerSpec = { regexes: [GPT2] };
const LLAMA3_SPEC: PreTokenizerSpec = { regexes: [LLAMA3], ignoreMerges: true, addBos: true };
const DBRX: PreTokenizerSpec = { regexes: [LLAMA3] };

export const PRE_TOKENIZERS: Readonly<Record<string, PreTokenizerSpec>> = {
  default: DEFAULT,
  llama3: LLAMA3_SPEC,
  'llama-v3': LLAMA3_SPEC,
  'llama-bpe': LLAMA3_SPEC,
  falcon3: LLAMA3_SPEC,
  pixtral: LLAMA3_SPEC,
  'deepseek-llm': {
    regexes: [
      '[\r\n]',
      String.raw`\s?[${DEEPSEEK_LLM_LETTERS}]+`,
      String.raw`\s?[!-/:-~！-／：-～‘-‟　-。]+`,
      String.raw`\s+$`,
      CJK,
      String.raw`\p{N}+`,
    ],
    cleanSpaces: false,
  },
  'deepseek-coder': {
    regexes: ['[\r\n]', String.raw`\s?\p{L}+`, String.raw`\s?\p{P}+`, CJK, String.raw`\p{N}`],
    cleanSpaces: false,
  },
  falcon: {
    regexes: [String.raw`[\p{P}\$\+<=>\^~\|\x60]+`, GPT2, '[0-9][0-9][0-9]'],
  },
  mpt: GPT2_SPEC,
  'gpt-2': GPT2_SPEC,
  'phi-2': GPT2_SPEC,
  olmo: GPT2_SPEC,
  jais: GPT2_SPEC,
  starcoder: STARCODER,
  refact: STARCODER,
  codeshell: STARCODER,
  exaone: STARCODER,
  'minerva-7b': STARCODER,
  exaone4: GPT2_SPEC,
  trillion: GPT2_SPEC,
  'command-r': STARCODER_KEEP_SPACES,
  smollm: STARCODER_KEEP_SPACES,
  qwen2: { regexes: [QWEN2], cleanSpaces: false },
  'deepseek-r1-qwen': { regexes: [QWEN2], cleanSpaces: false },
  stablelm2: { regexes: [QWEN2] },
  megrez: { regexes: [QWEN2] },
  dbrx: DBRX,
  'smaug-bpe': DBRX,
  'poro-chat': { regexes: [PORO], cleanSpaces: false },
  'chatglm-bpe': { regexes: [LLAMA3] },
  glm4: { regexes: [LLAMA3] },
  viking: { regexes: [PORO, String.raw`\p{N}`], cleanSpaces: false },
  tekken: { regexes: [TEKKEN], ignoreMerges: true, cleanSpaces: false, addBos: true },
};
