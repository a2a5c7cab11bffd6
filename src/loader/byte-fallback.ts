import type { Tokenizer } from '@huggingface/tokenizers';

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A run of byte tokens as transformers decodes it: its UTF-8 text, or one U+FFFD per byte when invalid. */
function decodeByteRun(bytes: number[]): string[] {
  try {
    return [strictUtf8.decode(Uint8Array.from(bytes))];
  } catch {
    return bytes.map(() => '\uFFFD');
  }
}

/** transformers' (Rust tokenizers') ByteFallback.decode_chain; tokenizers.js decodes invalid runs leniently. */
function byteFallbackChain(tokens: string[]): string[] {
  const out: string[] = [];
  let run: number[] = [];
  for (const token of tokens) {
    if (BYTE_TOKEN.test(token)) {
      run.push(Number.parseInt(token.slice(3, 5), 16));
      continue;
    }
    if (run.length) out.push(...decodeByteRun(run));
    run = [];
    out.push(token);
  }
  if (run.length) out.push(...decodeByteRun(run));
  return out;
}

/** The part of a tokenizers.js decoder we touch (its classes are not reachable through the package's types). */
interface DecoderNode {
  config?: { type?: string };
  decoders?: DecoderNode[];
  decode_chain(tokens: string[]): string[];
}

function patchDecoder(decoder: DecoderNode | null): boolean {
  if (decoder?.config?.type === 'ByteFallback') {
    decoder.decode_chain = byteFallbackChain;
    return true;
  }
  return (decoder?.decoders ?? []).map(patchDecoder).some(Boolean);
}

/**
 * Makes byte-fallback decoding match transformers, and returns the ids of the <0xNN> byte tokens (empty when the
 * tokenizer has no ByteFallback decoder). Their text can still change when another byte token follows: transformers
 * turns a whole run that is not valid UTF-8 into U+FFFDs.
 */
export function useTransformersByteFallback(tok: Tokenizer): ReadonlySet<number> {
  const ids = new Set<number>();
  if (!patchDecoder(tok.decoder as unknown as DecoderNode | null)) return ids;
  for (const [token, id] of tok.get_vocab(false)) if (BYTE_TOKEN.test(token)) ids.add(id);
  return ids;
}
