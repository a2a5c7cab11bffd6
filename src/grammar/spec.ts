import { createHash } from 'node:crypto';
import type { StructuralTagFormat } from '@mlc-ai/web-xgrammar';

/** What a request's output must match; compiled once per distinct spec (see `grammarKey`). */
export type GrammarSpec =
  /** Any JSON object (OpenAI `json_object`, Ollama `format: "json"`). */
  | { type: 'json_object' }
  | { type: 'json_schema'; schema: unknown }
  | { type: 'regex'; pattern: string }
  /** GBNF / EBNF text (llama.cpp's GBNF is read as is), root rule `root`. */
  | { type: 'grammar'; grammar: string }
  /** Exactly one of these strings. */
  | { type: 'choice'; choices: string[] }
  /** xgrammar's structural tag (tool calls: fixed text around JSON arguments). */
  | { type: 'structural_tag'; format: StructuralTagFormat }
  /**
   * `inner` after the model's reasoning, which is free: a block from `begin` to `end` (`<think>`, `</think>`) that the
   * prompt opened (`startsInside`), or that the model may open first (vLLM holds structured output only after its
   * reasoning parser's end).
   */
  | { type: 'after_reasoning'; begin: string; end: string; startsInside: boolean; inner: GrammarSpec };

/** JSON with object keys sorted, so that equal specs written differently share one compiled grammar. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The cache key of a spec: sha256 of its canonical JSON. */
export function grammarKey(spec: GrammarSpec): string {
  return createHash('sha256').update(canonical(spec)).digest('hex');
}

/** A string as an EBNF literal. */
export function ebnfLiteral(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The EBNF of a choice among fixed strings. */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfLiteral).join(' | ')}`;
}
