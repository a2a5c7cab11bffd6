import type { BranchNode, Node, Operand, Pipe, RangeNode } from './ast.ts';
import { TemplateError } from './errors.ts';
import { builtins, lazyBuiltins } from './funcs.ts';
import { lex, type Token } from './lexer.ts';

type Block = (BranchNode | RangeNode) & { chained: boolean; inElse: boolean };

/** Parses a Go text/template into nodes; errors name the line. */
export function parseTemplate(src: string): Node[] {
  const root: Node[] = [];
  const stack: Block[] = [];
  const current = (): Node[] => {
    const top = stack.at(-1);
    if (!top) return root;
    return top.inElse ? top.else! : top.body;
  };
  for (const piece of lex(src)) {
    if (piece.kind === 'text') {
      current().push({ type: 'text', text: piece.text });
      continue;
    }
    const { tokens, line } = piece;
    const fail = (msg: string): never => {
      throw new TemplateError(line, msg);
    };
    if (tokens.length === 0) fail('missing value for command');
    if (tokens[0]!.t === 'comment') {
      if (tokens.length > 1) fail('comment must be alone in its action');
      continue;
    }
    const head = tokens[0]!;
    const word = head.t === 'ident' ? head.v : '';
    const rest = tokens.slice(1);
    const open = (type: 'if' | 'with' | 'range', toks: Token[], chained: boolean): Block => {
      const pipe = parsePipe(toks, line, type === 'range' ? 2 : 1);
      return { type, pipe, body: [], else: null, line, chained, inElse: false };
    };
    if (word === 'if' || word === 'with' || word === 'range') {
      const block = open(word, rest, false);
      current().push(block);
      stack.push(block);
    } else if (word === 'else') {
      const top = stack.at(-1);
      if (!top || top.inElse) fail('unexpected {{else}}');
      top!.inElse = true;
      top!.else = [];
      const sub = rest[0]?.t === 'ident' ? rest[0].v : '';
      if (sub === 'if' || sub === 'with') {
        // `else if x` is `else` + a nested `if x` that the same `end` closes.
        const block = open(sub, rest.slice(1), true);
        top!.else.push(block);
        stack.push(block);
      } else if (rest.length) fail('unexpected tokens after {{else}}');
    } else if (word === 'end') {
      if (rest.length) fail('unexpected tokens after {{end}}');
      if (!stack.length) fail('unexpected {{end}}');
      while (stack.pop()!.chained) {}
    } else if (word === 'break' || word === 'continue') {
      if (!stack.some((b) => b.type === 'range')) fail(`{{${word}}} outside {{range}}`);
      current().push({ type: word, line });
    } else if (word === 'define' || word === 'template' || word === 'block') {
      fail(`{{${word}}} is not supported`);
    } else {
      current().push({ type: 'action', pipe: parsePipe(tokens, line, 1), line });
    }
  }
  if (stack.length) throw new TemplateError(stack.at(-1)!.line, `unclosed {{${stack.at(-1)!.type}}}`);
  return strip(root);
}

/** Drops the parser's bookkeeping fields so the tree is plain data. */
function strip(nodes: Node[]): Node[] {
  return nodes.map((n) => {
    if (n.type !== 'if' && n.type !== 'with' && n.type !== 'range') return n;
    return {
      type: n.type,
      pipe: n.pipe,
      body: strip(n.body),
      else: n.else ? strip(n.else) : null,
      line: n.line,
    } as Node;
  });
}

function parsePipe(tokens: Token[], line: number, maxDecl: number): Pipe {
  const fail = (msg: string): never => {
    throw new TemplateError(line, msg);
  };
  let pos = 0;
  const decl: string[] = [];
  let assign = false;
  // A declaration: `$x :=`, `$x =`, or (range) `$i, $v :=`.
  const declEnd = tokens.findIndex((t) => t.t === 'op' && (t.v === ':=' || t.v === '='));
  if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t.t === 'var' || (t.t === 'op' && t.v === ','))) {
    for (const t of tokens.slice(0, declEnd)) if (t.t === 'var') decl.push(t.v);
    if (decl.length > maxDecl || decl.some((v) => v.includes('.'))) fail('bad variable declaration');
    assign = tokens[declEnd]!.v === '=';
    pos = declEnd + 1;
  }
  const parseOperand = (): Operand => {
    const t = tokens[pos++];
    if (!t) return fail('missing operand');
    let operand: Operand;
    if (t.t === 'string') operand = { kind: 'literal', value: t.v };
    else if (t.t === 'number') operand = { kind: 'literal', value: Number(t.v) };
    else if (t.t === 'field')
      operand = t.v === '.' ? { kind: 'dot' } : { kind: 'field', names: t.v.slice(1).split('.') };
    else if (t.t === 'var') {
      const [name, ...names] = t.v.split('.');
      operand = { kind: 'var', name: name!, names };
    } else if (t.t === 'ident') {
      if (t.v === 'true' || t.v === 'false') operand = { kind: 'literal', value: t.v === 'true' };
      else if (t.v === 'nil') operand = { kind: 'literal', value: null };
      // As Go's parser: a call of an undefined function fails when the template is parsed, not when it runs.
      else if (t.v in builtins || t.v in lazyBuiltins) operand = { kind: 'func', name: t.v };
      else throw new TemplateError(line, `function "${t.v}" not defined`);
    } else if (t.t === 'op' && t.v === '(') {
      let depth = 1;
      const start = pos;
      while (pos < tokens.length && depth > 0) {
        const x = tokens[pos++]!;
        if (x.t === 'op' && x.v === '(') depth++;
        if (x.t === 'op' && x.v === ')') depth--;
      }
      if (depth !== 0) fail('unclosed left paren');
      operand = { kind: 'sub', pipe: parsePipe(tokens.slice(start, pos - 1), line, 0), names: [] };
      const chain = tokens[pos];
      if (chain?.t === 'field' && !chain.spaced && chain.v !== '.') {
        operand.names = chain.v.slice(1).split('.');
        pos++;
      }
    } else return fail(`unexpected "${t.v}"`);
    return operand;
  };
  const cmds: Operand[][] = [];
  let cmd: Operand[] = [];
  while (pos < tokens.length) {
    const t = tokens[pos]!;
    if (t.t === 'op' && t.v === '|') {
      if (!cmd.length) fail('missing command before |');
      cmds.push(cmd);
      cmd = [];
      pos++;
      continue;
    }
    if (t.t === 'op' && t.v !== '(') fail(`unexpected "${t.v}"`);
    if (t.t === 'comment') fail('comment inside an action');
    cmd.push(parseOperand());
  }
  if (!cmd.length) fail(cmds.length ? 'missing command after |' : 'missing value');
  cmds.push(cmd);
  return { decl, assign, cmds };
}
