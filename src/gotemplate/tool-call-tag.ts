import type { Node } from './ast.ts';
import { parseTemplate } from './parse.ts';

/**
 * Ollama's rule for the text that opens a tool call in a model's output: the first text of the template's
 * `{{ if .ToolCalls }}` block that is not only whitespace and comes before any action (a nested block is looked into,
 * and ends the search), cut before any
 * `{` and trimmed; '' when the block writes the JSON straight away. Null when the template has no such block (or is
 * not a Go template).
 */
export function toolCallTag(source: string): string | null {
  let nodes: Node[];
  try {
    nodes = parseTemplate(source);
  } catch {
    return null;
  }
  const block = findToolCallsBlock(nodes);
  if (!block) return null;
  const text = firstText(block);
  return text === null ? '' : text.replaceAll('\r\n', '\n').split('{')[0]!.trim();
}

function mentionsToolCalls(n: Node): boolean {
  return (
    (n.type === 'if' || n.type === 'with' || n.type === 'range') &&
    n.pipe.cmds.flat().some((o) => o.kind === 'field' && o.names.includes('ToolCalls'))
  );
}

function findToolCallsBlock(nodes: readonly Node[]): Node[] | null {
  for (const n of nodes) {
    if (n.type === 'if' && mentionsToolCalls(n)) return n.body;
    if (n.type === 'if' || n.type === 'with' || n.type === 'range') {
      const found = findToolCallsBlock(n.body) ?? (n.else ? findToolCallsBlock(n.else) : null);
      if (found) return found;
    }
  }
  return null;
}

/** The first text with more than whitespace, before any action; a nested block is searched and ends the search. */
function firstText(nodes: readonly Node[]): string | null {
  for (const n of nodes) {
    if (n.type === 'text' && n.text.trim()) return n.text;
    if (n.type === 'action') return null;
    if (n.type === 'if' || n.type === 'with' || n.type === 'range') {
      return firstText(n.body) ?? (n.else ? firstText(n.else) : null);
    }
  }
  return null;
}
