import type { Node, Operand, Pipe } from './ast.ts';
import { executeTemplate } from './execute.ts';
import { goToolCall, goTools } from './ollama-tools.ts';
import { parseTemplate } from './parse.ts';

export interface TemplateMessage {
  role: string;
  content: string;
  /** OpenAI-style calls ({ function: { name, arguments } }, arguments an object or JSON text). */
  tool_calls?: unknown;
  /** The tool a `role: "tool"` message answers (Ollama's tool_name; OpenAI's name). */
  tool_name?: unknown;
  name?: unknown;
  thinking?: unknown;
  reasoning_content?: unknown;
}

/** `.Tools` and `.Think` of a render. */
export interface TemplateOptions {
  tools?: readonly unknown[];
  think?: boolean;
}

/** Ollama's template for a model that brings none: each exchange's prompt, then its answer, as plain text. */
export const OLLAMA_DEFAULT_TEMPLATE = '{{ .Prompt }}';

const RESPONSE_ACTION: Node = {
  type: 'action',
  pipe: { decl: [], assign: false, cmds: [[{ kind: 'field', names: ['Response'] }]] },
  line: 0,
};

/**
 * A prompt template in Ollama's dialect, rendered the way Ollama renders it: a template that mentions
 * `.Messages` runs once over the whole conversation; an older one that only knows `.System`, `.Prompt` and
 * `.Response` runs once per exchange, and the last run stops right after `{{ .Response }}` so the model
 * continues from there.
 */
export class OllamaTemplate {
  readonly source: string;
  private readonly nodes: Node[];
  private readonly vars: Set<string>;

  constructor(source: string) {
    this.source = source;
    this.nodes = parseTemplate(source);
    this.vars = identifiers(this.nodes);
    if (!this.vars.has('messages') && !this.vars.has('response')) this.nodes.push(RESPONSE_ACTION);
  }

  /** Whether the template fills in the middle (Ollama's "insert" capability: it mentions `.Suffix`). */
  get insert(): boolean {
    return this.vars.has('suffix');
  }

  /** The fill-in-the-middle prompt for the text before (`.Prompt`) and after (`.Suffix`) the gap, as Ollama renders it. */
  renderInsert(prompt: string, suffix: string): string {
    return executeTemplate(this.nodes, {
      Tools: [],
      Think: false,
      IsThinkSet: false,
      System: '',
      Messages: [],
      Prompt: prompt,
      Suffix: suffix,
      Response: '',
    });
  }

  render(messages: readonly TemplateMessage[], opts: TemplateOptions = {}): string {
    const { system, collated } = collate(messages);
    const base = {
      Tools: goTools(opts.tools ?? []),
      Think: opts.think ?? false,
      IsThinkSet: opts.think !== undefined,
    };
    if (this.vars.has('messages')) {
      return executeTemplate(this.nodes, {
        ...base,
        System: system,
        Messages: collated.map(goMessage),
        Response: '',
      });
    }
    let out = '';
    let turn = { System: '', Prompt: '', Response: '' };
    const flush = () => {
      out += executeTemplate(this.nodes, { ...base, ...turn });
      turn = { System: '', Prompt: '', Response: '' };
    };
    for (const m of collated) {
      if (m.role === 'system') {
        if (turn.Prompt || turn.Response) flush();
        turn.System = m.content;
      } else if (m.role === 'user') {
        if (turn.Response) flush();
        turn.Prompt = m.content;
      } else if (m.role === 'assistant') turn.Response = m.content;
    }
    return out + executeTemplate(cutAfterResponse(this.nodes), { ...base, ...turn });
  }
}

/** Ollama's collate: all system messages joined for `.System`; consecutive same-role messages merged (not tool). */
function collate(messages: readonly TemplateMessage[]): { system: string; collated: TemplateMessage[] } {
  const system: string[] = [];
  const collated: TemplateMessage[] = [];
  for (const m of messages) {
    if (m.role === 'system') system.push(m.content);
    const last = collated.at(-1);
    if (last && last.role === m.role && m.role !== 'tool' && !m.tool_calls) last.content += `\n\n${m.content}`;
    else collated.push({ ...m });
  }
  return { system: system.join('\n\n'), collated };
}

/** The fields Ollama's Go messages expose to templates. */
function goMessage(m: TemplateMessage) {
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  const toolName =
    typeof m.tool_name === 'string' ? m.tool_name : m.role === 'tool' && typeof m.name === 'string' ? m.name : '';
  const thinking =
    typeof m.thinking === 'string' ? m.thinking : typeof m.reasoning_content === 'string' ? m.reasoning_content : '';
  return {
    Role: m.role,
    Content: m.content,
    Images: [],
    ToolCalls: calls.map(goToolCall),
    ToolName: toolName,
    Thinking: thinking,
  };
}

/** Every field and variable name a template mentions, lowercased (Ollama's Template.Vars). */
function identifiers(nodes: readonly Node[]): Set<string> {
  const out = new Set<string>();
  const pipe = (p: Pipe): void => {
    for (const o of p.cmds.flat()) operand(o);
  };
  const operand = (o: Operand): void => {
    const names = o.kind === 'field' ? o.names : o.kind === 'var' ? [o.name, ...o.names] : [];
    for (const n of names) out.add(n.toLowerCase());
    if (o.kind === 'sub') pipe(o.pipe);
  };
  const walk = (list: readonly Node[]) => {
    for (const n of list) {
      if (n.type === 'action') pipe(n.pipe);
      if (n.type === 'if' || n.type === 'with' || n.type === 'range') {
        pipe(n.pipe);
        walk(n.body);
        if (n.else) walk(n.else);
      }
    }
  };
  walk(nodes);
  return out;
}

/**
 * A copy of the tree with everything after the first `.Response` field removed (in tree order, as Ollama's
 * deleteNode does), so the final exchange ends where the model's answer begins.
 */
function cutAfterResponse(nodes: readonly Node[]): Node[] {
  let cut = false;
  const list = (items: readonly Node[]): Node[] => {
    const kept: Node[] = [];
    for (const n of items) {
      if (cut) break;
      if (n.type === 'action') {
        const cmds: Operand[][] = [];
        for (const cmd of n.pipe.cmds) {
          if (cut) break;
          const args: Operand[] = [];
          for (const a of cmd) {
            if (cut) break;
            args.push(a);
            if (a.kind === 'field' && a.names.includes('Response')) cut = true;
          }
          cmds.push(args);
        }
        kept.push({ ...n, pipe: { ...n.pipe, cmds } });
      } else if (n.type === 'if' || n.type === 'with' || n.type === 'range') {
        const body = list(n.body);
        const otherwise = n.else && !cut ? list(n.else) : null;
        kept.push({ ...n, body, else: otherwise });
      } else kept.push(n);
    }
    return kept;
  };
  return list(nodes);
}
