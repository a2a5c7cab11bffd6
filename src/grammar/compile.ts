import { rewriteNumericBounds } from './schema-rewrite.ts';
import { choiceGrammar, type GrammarSpec } from './spec.ts';
import { type CompiledGrammar, type GrammarCompiler, takeXgrammarError } from './xgrammar.ts';

/** Output is one line: a random or confused model cannot run on in whitespace, and separators are fixed. */
const COMPACT = { anyWhitespace: false, indent: -1 } as const;

function compileRaw(compiler: GrammarCompiler, spec: GrammarSpec): Promise<CompiledGrammar> {
  switch (spec.type) {
    case 'json_object':
      // Not strict: any properties.
      return compiler.compileJSONSchema('{"type":"object"}', COMPACT.anyWhitespace, COMPACT.indent, undefined, false);
    case 'json_schema':
      // Strict: properties the schema does not name only where additionalProperties allows them.
      return compiler.compileJSONSchema(
        JSON.stringify(rewriteNumericBounds(spec.schema)),
        COMPACT.anyWhitespace,
        COMPACT.indent,
      );
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
      return compiler.compileStructuralTag({ type: 'structural_tag', format: spec.format });
  }
}

const WHAT: Record<GrammarSpec['type'], string> = {
  json_object: 'JSON object grammar',
  json_schema: 'JSON schema',
  regex: 'regular expression',
  grammar: 'grammar',
  choice: 'choice',
  structural_tag: 'tool call format',
};

/** Compiles a spec for the compiler's vocabulary; an invalid one throws an Error naming the problem in one line. */
export async function compileSpec(compiler: GrammarCompiler, spec: GrammarSpec): Promise<CompiledGrammar> {
  try {
    return await compileRaw(compiler, spec);
  } catch (err) {
    const reason = takeXgrammarError(err instanceof Error ? err.message : String(err));
    throw new Error(`invalid ${WHAT[spec.type]}: ${reason.split('\n')[0]}`);
  }
}
