import type { StructuralTagFormat } from '@mlc-ai/web-xgrammar';
import { rewriteNumericBounds } from './schema-rewrite.ts';
import { choiceGrammar, type GrammarSpec } from './spec.ts';
import { type CompiledGrammar, type GrammarCompiler, takeXgrammarError, xgrammar } from './xgrammar.ts';

/** Output is one line: a random or confused model cannot run on in whitespace, and separators are fixed. */
const COMPACT = { anyWhitespace: false, indent: -1 } as const;

/**
 * xgrammar's JSON schema arguments for a JSON spec: `json_object` is any object (not strict: any properties);
 * `json_schema` is strict (properties the schema does not name only where additionalProperties allows them).
 */
function jsonArguments(spec: GrammarSpec & { type: 'json_object' | 'json_schema' }) {
  const schema = spec.type === 'json_object' ? '{"type":"object"}' : JSON.stringify(rewriteNumericBounds(spec.schema));
  return [schema, COMPACT.anyWhitespace, COMPACT.indent, undefined, spec.type === 'json_schema'] as const;
}

/**
 * JSON's EBNF with the string characters xgrammar 0.1.27 lets through but JSON.parse refuses (control characters, and
 * an unescaped quote or backslash, in a length-bounded string or a `pattern`'s `.` and negated classes) left out. A
 * whole-output JSON grammar has the control characters taken out by the worker's token mask; inside a structural tag
 * the mask cannot apply (the reasoning before it has newlines). Every character class of a JSON grammar lies inside a
 * string; quoted literals are left as they are.
 */
function jsonSafeStrings(ebnf: string): string {
  // Literals ("…") and classes ([…]) with their escapes; only classes change.
  return ebnf.replace(/"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]/g, (token) => {
    if (token === '[\\0-\\U0010ffff]') return '[^\\0-\\x1f\\"\\\\]';
    return token.startsWith('[^') ? `[^\\0-\\x1f\\"\\\\${token.slice(2)}` : token;
  });
}

/** A spec as a structural tag's part (JSON as the EBNF xgrammar makes of its schema). */
async function asFormat(spec: GrammarSpec): Promise<StructuralTagFormat> {
  switch (spec.type) {
    case 'json_object':
    case 'json_schema': {
      const grammar = await xgrammar().Grammar.fromJSONSchema(...jsonArguments(spec));
      try {
        return { type: 'grammar', grammar: jsonSafeStrings(grammar.toString()) };
      } finally {
        grammar.dispose(); // WebAssembly memory, not collected
      }
    }
    case 'regex':
      return { type: 'regex', pattern: spec.pattern };
    case 'grammar':
      return { type: 'grammar', grammar: spec.grammar };
    case 'choice':
      return { type: 'grammar', grammar: choiceGrammar(spec.choices) };
    case 'structural_tag':
      return spec.format;
    case 'after_reasoning': {
      const inner = await asFormat(spec.inner);
      // Free text up to the block's end, a little whitespace (the models write a blank line), then the constraint.
      const reasoned = (begin: string): StructuralTagFormat => ({
        type: 'sequence',
        elements: [
          { type: 'tag', begin, content: { type: 'any_text' }, end: spec.end },
          { type: 'regex', pattern: '\\s{0,2}' },
          inner,
        ],
      });
      return spec.startsInside ? reasoned('') : { type: 'or', elements: [reasoned(spec.begin), inner] };
    }
  }
}

async function compileRaw(compiler: GrammarCompiler, spec: GrammarSpec): Promise<CompiledGrammar> {
  switch (spec.type) {
    case 'json_object':
    case 'json_schema':
      return compiler.compileJSONSchema(...jsonArguments(spec));
    case 'regex':
      return compiler.compileStructuralTag({
        type: 'structural_tag',
        format: { type: 'regex', pattern: spec.pattern },
      });
    case 'grammar':
      return compiler.compileGrammar(spec.grammar, 'root');
    case 'choice':
      return compiler.compileGrammar(choiceGrammar(spec.choices), 'root');
    case 'structural_tag':
    case 'after_reasoning':
      return compiler.compileStructuralTag({ type: 'structural_tag', format: await asFormat(spec) });
  }
}

const WHAT: Record<Exclude<GrammarSpec['type'], 'after_reasoning'>, string> = {
  json_object: 'JSON object grammar',
  json_schema: 'JSON schema',
  regex: 'regular expression',
  grammar: 'grammar',
  choice: 'choice',
  structural_tag: 'tool call format',
};

/** What a spec is called in errors: one after reasoning by what it constrains (its reasoning cannot be wrong). */
function what(spec: GrammarSpec): string {
  return spec.type === 'after_reasoning' ? what(spec.inner) : WHAT[spec.type];
}

/** Compiles a spec for the compiler's vocabulary; an invalid one throws an Error naming the problem in one line. */
export async function compileSpec(compiler: GrammarCompiler, spec: GrammarSpec): Promise<CompiledGrammar> {
  try {
    return await compileRaw(compiler, spec);
  } catch (err) {
    const reason = takeXgrammarError(err instanceof Error ? err.message : String(err));
    throw new Error(`invalid ${what(spec)}: ${reason.split('\n')[0]}`);
  }
}
