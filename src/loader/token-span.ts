/**
 * The most characters (UTF-16 code units, what `string.length` counts) of input text that one token can stand for,
 * so that a text longer than `contextLength x span` is known not to fit before it is tokenized.
 *
 * Why the bound holds: every token's vocabulary string is at least as long as the text it covers (byte-level BPE
 * spells each byte as one character, and a byte is at least one code unit's worth of UTF-8; a Metaspace '▁' stands
 * for one space; added tokens are matched literally; a byte-fallback `<0xNN>` is longer than its byte). Unicode
 * normalization can compose up to 4 code units into 1 (U+1F82 from its full decomposition), so it multiplies the
 * span by 4. Tokenizers that may drop or fold text without bound (whitespace splitters, stripping, accent removal,
 * regex replacements, fused unknown runs, added tokens that swallow whitespace) get no bound: null.
 */

interface Step {
  type?: string;
  normalizers?: Step[];
  pretokenizers?: Step[];
  pattern?: { String?: string; Regex?: string };
  content?: string;
  behavior?: string;
}

/** Unicode normalization forms: at most 4 input code units per output code unit. */
const UNICODE_FORMS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD']);
const COMPOSE_FACTOR = 4;
/** Pre-tokenizers that keep every character (unless told to remove what they split on). */
const LOSSLESS_SPLITTERS = new Set(['ByteLevel', 'Metaspace', 'Split', 'Digits', 'Punctuation', 'FixedLength']);

/** How much a normalizer can shrink text (1 = never), or null when it can drop text without bound. */
function normalizerFactor(n: Step | null | undefined): number | null {
  if (!n) return 1;
  if (n.type === 'Sequence') {
    let f = 1;
    for (const inner of n.normalizers ?? []) {
      const g = normalizerFactor(inner);
      if (g === null) return null;
      f = Math.max(f, g);
    }
    return f;
  }
  if (n.type && UNICODE_FORMS.has(n.type)) return COMPOSE_FACTOR;
  if (n.type === 'Prepend' || n.type === 'Lowercase') return 1;
  if (n.type === 'Replace') return replaceKeepsLength(n) ? 1 : null;
  return null;
}

function replaceKeepsLength(step: Step): boolean {
  const from = step.pattern?.String;
  return from !== undefined && (step.content ?? '').length >= from.length;
}

function keepsEveryCharacter(p: Step | null | undefined): boolean {
  if (!p) return true;
  if (p.type === 'Sequence') return (p.pretokenizers ?? []).every(keepsEveryCharacter);
  if (p.type === 'Replace') return replaceKeepsLength(p);
  return p.type !== undefined && LOSSLESS_SPLITTERS.has(p.type) && p.behavior?.toLowerCase() !== 'removed';
}

interface TokenizerJson {
  normalizer?: Step | null;
  pre_tokenizer?: Step | null;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    byte_fallback?: boolean;
    fuse_unk?: boolean;
    unk_token?: string | null;
  };
  added_tokens?: { content: string; lstrip?: boolean; rstrip?: boolean }[];
}

const hasByteLevel = (p: Step | null | undefined): boolean =>
  !!p && (p.type === 'ByteLevel' || (p.pretokenizers ?? []).some(hasByteLevel));

/** Whether every character becomes tokens (bytes, or one unknown token per character) rather than vanishing. */
function coversEveryCharacter(json: TokenizerJson): boolean {
  const model = json.model!;
  if (hasByteLevel(json.pre_tokenizer)) return true;
  const vocab = model.vocab ?? {};
  const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
  if (model.byte_fallback && Array.from({ length: 256 }, (_, b) => hex(b)).every((t) => t in vocab)) return true;
  return typeof model.unk_token === 'string' && !model.fuse_unk;
}

/**
 * The token span of a tokenizer.json (with its tokenizer_config.json), or null when no sound bound exists.
 */
export function maxCharsPerToken(json: TokenizerJson, config: Record<string, unknown> = {}): number | null {
  if (json.model?.type !== 'BPE' || !json.model.vocab) return null;
  if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return null;
  const added = json.added_tokens ?? [];
  if (added.some((t) => t.lstrip || t.rstrip)) return null;
  const factor = normalizerFactor(json.normalizer);
  if (factor === null || !keepsEveryCharacter(json.pre_tokenizer) || !coversEveryCharacter(json)) return null;
  let longest = 1;
  for (const token of Object.keys(json.model.vocab)) longest = Math.max(longest, token.length);
  for (const t of added) longest = Math.max(longest, t.content.length);
  return longest * factor;
}
