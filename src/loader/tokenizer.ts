import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.ts';
import { useTransformersByteFallback } from './byte-fallback.ts';
import { ggufTokenizerFiles, isGgufPath } from './gguf/files.ts';
import { readJson } from './hf-config.ts';
import { maxCharsPerToken } from './token-span.ts';

/** What the engine, CLI and server need of a tokenizer (implemented over tokenizer.json). */
export interface TextTokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /**
   * A text pair with the tokenizer's pair template (a cross-encoder's query and document: `[CLS] a [SEP] b [SEP]`)
   * and each token's segment (0 for the first text, 1 for the second, as the template says). Absent when the
   * tokenizer has no pair template to offer (byte tokenizers of dummy models).
   */
  encodePair?(first: string, second: string): { ids: number[]; typeIds: number[] };
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** The id of a vocabulary entry (a token's own text, e.g. "yes" or "Ġyes"); null when there is none. */
  tokenId?(token: string): number | null;
  /** The vocabulary entry of an id, as stored ("Ġyes", "<0x0A>"); null when there is none. */
  tokenText?(id: number): string | null;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /**
   * True for byte-fallback tokens (<0xNN>): the text of a run of them can change when the next byte arrives, so a
   * streaming detokenizer holds it back. Absent or false for tokenizers without byte fallback.
   */
  isByteFallbackToken?(id: number): boolean;
  /**
   * The most characters of input text one token can stand for (see token-span.ts): a text longer than the context
   * times this cannot fit. Absent or null when no sound bound is known.
   */
  readonly maxCharsPerToken?: number | null;
}

/** BOS/EOS ids from generation_config.json (they win over the tokenizer's own). */
export interface TokenizerGenerationIds {
  bosTokenId: number | null;
  eosTokenIds: readonly number[];
}

/** A special token in tokenizer_config.json: a plain string, or an AddedToken dict (transformers 4). */
export function specialTokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

/**
 * Reads tokenizer_config.json, or an empty config when the folder has none (transformers tolerates that too); for a
 * GGUF file, the config its `tokenizer.ggml.*` keys amount to.
 */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  if (isGgufPath(dir)) return ggufTokenizerFiles(dir).config;
  const path = join(dir, 'tokenizer_config.json');
  return existsSync(path) ? readJson(path) : {};
}

class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /**
   * transformers 4's Llama-style tokenizers rebuild their post-processor from add_bos_token / add_eos_token
   * (tokenizer_config.json); when either is given, we add BOS/EOS ourselves instead of the stored post-processor.
   */
  private readonly explicitSpecials: { bos: number | null; eos: number | null } | null;
  /** transformers >= 4.45 defaults clean_up_tokenization_spaces to false; tokenizers.js defaults it to true. */
  private readonly cleanUpSpaces: boolean;
  private readonly byteTokens: ReadonlySet<number>;

  constructor(
    private readonly tok: Tokenizer,
    config: Record<string, unknown>,
    generation: TokenizerGenerationIds | undefined,
    readonly maxCharsPerToken: number | null,
  ) {
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const idOf = (key: string): number | null => {
      const text = specialTokenText(config[key]);
      return text === null ? null : (tok.token_to_id(text) ?? null);
    };
    const bos = idOf('bos_token');
    const eos = idOf('eos_token');
    this.bosTokenId = generation?.bosTokenId ?? bos;
    this.eosTokenIds = [...new Set([...(generation?.eosTokenIds ?? []), ...(eos === null ? [] : [eos])])];
    const addBos = config.add_bos_token;
    const addEos = config.add_eos_token;
    this.explicitSpecials =
      typeof addBos === 'boolean' || typeof addEos === 'boolean'
        ? { bos: addBos === true ? bos : null, eos: addEos === true ? eos : null }
        : null;
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    this.byteTokens = useTransformersByteFallback(tok);
  }

  isByteFallbackToken(id: number): boolean {
    return this.byteTokens.has(id);
  }

  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] {
    const add = opts?.addSpecialTokens ?? true;
    if (!this.explicitSpecials || !add) return this.tok.encode(text, { add_special_tokens: add }).ids;
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    const { bos, eos } = this.explicitSpecials;
    return [...(bos === null ? [] : [bos]), ...ids, ...(eos === null ? [] : [eos])];
  }

  tokenId(token: string): number | null {
    return this.tok.token_to_id(token) ?? null;
  }

  tokenText(id: number): string | null {
    return this.tok.id_to_token(id) ?? null;
  }

  encodePair(first: string, second: string): { ids: number[]; typeIds: number[] } {
    const e = this.tok.encode(first, { text_pair: second, return_token_type_ids: true });
    return { ids: e.ids, typeIds: e.token_type_ids };
  }

  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string {
    // tokenizers.js rejects an empty list; an empty list decodes to '' everywhere else.
    if (ids.length === 0) return '';
    return this.tok.decode([...ids], {
      skip_special_tokens: opts?.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }
}

/**
 * tokenizers.js runs BPE over each pre-token without a cache past 256 characters, and a sentencepiece-style
 * tokenizer (no pre-tokenizer) makes the whole text one pre-token: 100 KB of text took 1.9 s. When no merge yields
 * a token with '▁' after another character, no merge can cross a word start, so splitting before each such '▁'
 * gives the same ids (BPE never pairs symbols across the cut) in 1/25 of the time.
 */
function withWordSplit(json: Record<string, unknown>): Record<string, unknown> {
  const model = json.model as { type?: string; merges?: unknown[]; ignore_merges?: boolean } | undefined;
  if (json.pre_tokenizer != null || model?.type !== 'BPE' || model.ignore_merges || !Array.isArray(model.merges)) {
    return json;
  }
  for (const m of model.merges) {
    const merged = Array.isArray(m) ? m.join('') : String(m).replace(' ', '');
    if (/[^▁]▁/u.test(merged)) return json;
  }
  return {
    ...json,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '▁*[^▁]+' }, behavior: 'Isolated', invert: false },
  };
}

/** Loads tokenizer.json + tokenizer_config.json from a model folder, or their equivalent from a GGUF file. */
export function loadTokenizer(dir: string, generation?: TokenizerGenerationIds): TextTokenizer {
  const gguf = isGgufPath(dir);
  const path = gguf ? dir : join(dir, 'tokenizer.json');
  if (!gguf && !existsSync(path)) {
    const hint = existsSync(join(dir, 'tokenizer.model'))
      ? 'the folder has only a sentencepiece tokenizer.model; pagoda reads tokenizer.json, which transformers writes with save_pretrained'
      : 'expected a Hugging Face tokenizer.json beside config.json';
    throw new UserError(`${path}: file not found (${hint})`);
  }
  const json = gguf ? ggufTokenizerFiles(dir).json : readJson(path);
  const config = readTokenizerConfig(dir);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(withWordSplit(json), config);
  } catch (err) {
    throw new UserError(`${path}: unsupported or malformed tokenizer (${(err as Error).message})`);
  }
  return new HfTokenizer(tok, config, generation, maxCharsPerToken(json, config));
}
