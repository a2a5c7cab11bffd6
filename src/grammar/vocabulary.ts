import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A tokenizer's vocabulary as xgrammar reads it: every token's stored text and how to turn it into bytes. */
export interface GrammarVocabulary {
  /** Stored token text by id; '' for special tokens (xgrammar never allows them inside a grammar) and gaps. */
  tokens: string[];
  /** GPT-2 byte-to-unicode text, sentencepiece text (▁ and <0xNN>), or text as is. */
  vocabType: 'byte_level' | 'byte_fallback' | 'raw';
  /** The tokenizer prepends a space (sentencepiece's ▁) to the text it encodes. */
  prependSpace: boolean;
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number> | [string, number][]; byte_fallback?: boolean };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  decoder?: unknown;
}

/** The parts of a tokenizers component (Sequence nests them), flattened. */
function parts(component: unknown): Record<string, unknown>[] {
  if (!component || typeof component !== 'object') return [];
  const c = component as Record<string, unknown>;
  const nested = c.decoders ?? c.normalizers ?? c.pretokenizers;
  return [c, ...(Array.isArray(nested) ? nested.flatMap(parts) : [])];
}

/** The vocabulary of a tokenizer.json (as transformers' `TokenizerInfo.from_huggingface` reads it in xgrammar). */
export function vocabularyFromTokenizerJson(json: TokenizerJson): GrammarVocabulary {
  const tokens: string[] = [];
  const vocab = json.model?.vocab ?? {};
  const entries: [string, number][] = Array.isArray(vocab)
    ? vocab.map(([piece], id) => [piece, id])
    : Object.entries(vocab);
  for (const [text, id] of entries) tokens[id] = text;
  for (const t of json.added_tokens ?? []) tokens[t.id] = t.special ? '' : t.content;
  for (let i = 0; i < tokens.length; i++) tokens[i] ??= '';

  const decoders = parts(json.decoder).map((d) => d.type);
  const byteFallback = json.model?.byte_fallback === true || decoders.includes('ByteFallback');
  const vocabType = decoders.includes('ByteLevel') ? 'byte_level' : byteFallback ? 'byte_fallback' : 'raw';
  const prependSpace = [...parts(json.normalizer), ...parts(json.pre_tokenizer)].some(
    (p) =>
      (p.type === 'Prepend' && p.prepend === '▁') ||
      (p.type === 'Metaspace' &&
        (p.prepend_scheme === 'first' || p.prepend_scheme === 'always' || p.add_prefix_space === true)),
  );
  return { tokens, vocabType, prependSpace };
}

/** The vocabulary of a model folder's tokenizer.json. */
export function loadGrammarVocabulary(dir: string): GrammarVocabulary {
  return vocabularyFromTokenizerJson(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as TokenizerJson);
}

/** GPT-2's byte-to-unicode table, inverted: the byte each character of byte-level token text stands for. */
function byteLevelDecoder(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 0; b < 256; b++) if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) bytes.push(b);
  const chars = bytes.slice();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  return new Map(chars.map((c, i) => [String.fromCodePoint(c), bytes[i]!]));
}

/** The bytes each token adds to the output text (special tokens: none). */
export function tokenBytes(v: GrammarVocabulary): Uint8Array[] {
  const utf8 = new TextEncoder();
  if (v.vocabType === 'byte_level') {
    const table = byteLevelDecoder();
    return v.tokens.map((t) => Uint8Array.from([...t].flatMap((ch) => table.get(ch) ?? [...utf8.encode(ch)])));
  }
  if (v.vocabType === 'byte_fallback') {
    return v.tokens.map((t) => {
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
      return byte ? Uint8Array.of(Number.parseInt(byte[1]!, 16)) : utf8.encode(t.replaceAll('▁', ' '));
    });
  }
  return v.tokens.map((t) => utf8.encode(t));
}
