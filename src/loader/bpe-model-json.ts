/** How a BPE vocabulary handles what it cannot merge: nothing special (byte-level BPE), or SentencePiece's way. */
export interface BpeFallback {
  /** The unknown token; null for byte-level BPE, whose 256 byte tokens cover every input. */
  unkToken: string | null;
  /** Unknown pieces as <0xXX> byte tokens, runs of unknowns fused into one (SentencePiece). */
  byteFallback: boolean;
  /** Whole words found in the vocabulary are taken before any merge (Llama 3). */
  ignoreMerges: boolean;
}

const BYTE_LEVEL: BpeFallback = { unkToken: null, byteFallback: false, ignoreMerges: false };

/** tokenizer.json's `model` for a BPE vocabulary, with every field Hugging Face's tokenizers expect there. */
export function bpeModelJson(vocab: Record<string, number>, merges: unknown[], fallback: Partial<BpeFallback> = {}) {
  const { unkToken, byteFallback, ignoreMerges } = { ...BYTE_LEVEL, ...fallback };
  return {
    type: 'BPE',
    dropout: null,
    unk_token: unkToken,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: byteFallback,
    byte_fallback: byteFallback,
    ignore_merges: ignoreMerges,
    vocab,
    merges,
  };
}
