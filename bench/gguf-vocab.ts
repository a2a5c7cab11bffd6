/**
 * The vocabulary of a GGUF file, for benchmarks over llama.cpp's vocabulary-only fixtures: a minimal reader of the
 * metadata section (GGUF v2/v3), enough for tokenizer.ggml.{model,tokens,token_type}.
 */
import { readFileSync } from 'node:fs';
import type { GrammarVocabulary } from '../src/grammar/vocabulary.ts';

const CONTROL = 3;

export function ggufVocabulary(path: string): GrammarVocabulary {
  const buf = readFileSync(path);
  let at = 0;
  const u32 = () => {
    const v = buf.readUInt32LE(at);
    at += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(buf.readBigUInt64LE(at));
    at += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    const s = buf.toString('utf8', at, at + n);
    at += n;
    return s;
  };
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): unknown => {
    if (type === 8) return str();
    if (type === 9) {
      const t = u32();
      const n = u64();
      return Array.from({ length: n }, () => value(t));
    }
    const size = SIZES[type];
    if (size === undefined) throw new Error(`${path}: unknown GGUF value type ${type}`);
    const v = type === 4 ? buf.readUInt32LE(at) : type === 5 ? buf.readInt32LE(at) : buf[at];
    at += size;
    return v;
  };
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${path}: not a GGUF file`);
  at = 4;
  u32(); // version
  u64(); // tensor count
  const kvs = u64();
  const meta = new Map<string, unknown>();
  for (let i = 0; i < kvs; i++) {
    const key = str();
    meta.set(key, value(u32()));
  }
  const tokens = meta.get('tokenizer.ggml.tokens') as string[];
  const types = (meta.get('tokenizer.ggml.token_type') as number[] | undefined) ?? [];
  const model = meta.get('tokenizer.ggml.model');
  return {
    tokens: tokens.map((t, i) => (types[i] === CONTROL ? '' : t)),
    vocabType: model === 'gpt2' ? 'byte_level' : model === 'llama' ? 'byte_fallback' : 'raw',
    prependSpace: model === 'llama',
  };
}
