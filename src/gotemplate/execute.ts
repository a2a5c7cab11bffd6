import type { Node, Operand, Pipe } from './ast.ts';
import { TemplateError } from './errors.ts';
import { builtins, isTrue, lazyBuiltins, printValue } from './funcs.ts';

class LoopSignal {
  constructor(readonly kind: 'break' | 'continue') {}
}

/**
 * Runs parsed template nodes over `data` the way Go's text/template does: dot moves in range/with,
 * variables live until the end of the block that declared them, `$` is the data.
 * Differences: a missing field or nil prints as "" (Go prints "<no value>"); strings count UTF-16 units.
 */
export function executeTemplate(nodes: readonly Node[], data: unknown): string {
  const state = new State(data);
  state.walk(nodes, data);
  return state.out;
}

class State {
  out = '';
  private vars: { name: string; value: unknown }[];

  constructor(data: unknown) {
    this.vars = [{ name: '$', value: data }];
  }

  walk(nodes: readonly Node[], dot: unknown): void {
    const mark = this.vars.length;
    try {
      for (const node of nodes) this.node(node, dot);
    } finally {
      this.vars.length = mark;
    }
  }

  private node(node: Node, dot: unknown): void {
    switch (node.type) {
      case 'text':
        this.out += node.text;
        return;
      case 'action': {
        const value = this.pipe(node.pipe, dot, node.line);
        if (node.pipe.decl.length === 0) this.out += printValue(value);
        return;
      }
      case 'if':
      case 'with': {
        const mark = this.vars.length;
        const value = this.pipe(node.pipe, dot, node.line);
        if (isTrue(value)) this.walk(node.body, node.type === 'with' ? value : dot);
        else if (node.else) this.walk(node.else, dot);
        this.vars.length = mark;
        return;
      }
      case 'range':
        this.range(node, dot);
        return;
      case 'break':
      case 'continue':
        throw new LoopSignal(node.type);
    }
  }

  private range(node: Extract<Node, { type: 'range' }>, dot: unknown): void {
    const pipe: Pipe = { ...node.pipe, decl: [] };
    const value = this.pipe(pipe, dot, node.line);
    let entries: [unknown, unknown][];
    if (value == null) entries = [];
    else if (Array.isArray(value)) entries = value.map((v, i) => [i, v]);
    else if (typeof value === 'number') entries = Array.from({ length: Math.max(0, value) }, (_, i) => [i, i]);
    else if (typeof value === 'object')
      entries = Object.keys(value)
        .sort()
        .map((k) => [k, (value as never)[k]]);
    else throw new TemplateError(node.line, `range can't iterate over ${printValue(value)}`);
    if (entries.length === 0) {
      if (node.else) this.walk(node.else, dot);
      return;
    }
    const decl = node.pipe.decl;
    for (const [key, elem] of entries) {
      const mark = this.vars.length;
      if (decl.length === 1) this.vars.push({ name: decl[0]!, value: elem });
      if (decl.length === 2) this.vars.push({ name: decl[0]!, value: key }, { name: decl[1]!, value: elem });
      try {
        this.walk(node.body, elem);
      } catch (signal) {
        if (!(signal instanceof LoopSignal)) throw signal;
        if (signal.kind === 'break') break;
      } finally {
        this.vars.length = mark;
      }
    }
  }

  private pipe(pipe: Pipe, dot: unknown, line: number): unknown {
    let value: unknown;
    let piped = false;
    for (const cmd of pipe.cmds) {
      value = this.command(cmd, dot, line, piped ? [value] : []);
      piped = true;
    }
    for (const name of pipe.decl) {
      if (pipe.assign) this.lookup(name, line).value = value;
      else this.vars.push({ name, value });
    }
    return value;
  }

  private command(cmd: Operand[], dot: unknown, line: number, piped: unknown[]): unknown {
    const [head, ...args] = cmd;
    if (head!.kind === 'func') {
      const name = head!.name;
      const lazy = lazyBuiltins[name];
      const thunks = [...args.map((a) => () => this.operand(a, dot, line)), ...piped.map((p) => () => p)];
      try {
        if (lazy) return lazy(thunks);
        // The parser refused undefined functions.
        return builtins[name]!(...thunks.map((t) => t()));
      } catch (err) {
        if (err instanceof TemplateError) throw err;
        throw new TemplateError(line, `${name}: ${(err as Error).message}`);
      }
    }
    if (args.length || piped.length) throw new TemplateError(line, "can't give argument to non-function");
    return this.operand(head!, dot, line);
  }

  private operand(op: Operand, dot: unknown, line: number): unknown {
    switch (op.kind) {
      case 'dot':
        return dot;
      case 'literal':
        return op.value;
      case 'field':
        return fields(dot, op.names, line);
      case 'var':
        return fields(this.lookup(op.name, line).value, op.names, line);
      case 'sub':
        return fields(this.pipe(op.pipe, dot, line), op.names, line);
      case 'func':
        return this.command([op], dot, line, []);
    }
  }

  private lookup(name: string, line: number): { name: string; value: unknown } {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!;
    throw new TemplateError(line, `undefined variable "${name}"`);
  }
}

function fields(value: unknown, names: readonly string[], line: number): unknown {
  let v = value;
  for (const name of names) {
    if (v == null) return undefined;
    if (typeof v !== 'object') throw new TemplateError(line, `can't evaluate field ${name} in ${typeof v}`);
    v = (v as Record<string, unknown>)[name];
  }
  return v;
}
