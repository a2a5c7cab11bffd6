/**
 * Inlines a WebAssembly text module's small helper functions into their callers before assembly. V8 (Node 20) does
 * not inline wasm-to-wasm calls by default, and the CPU kernels call their SIMD helpers in every inner loop: a real
 * call per 16 values halves the kernels' speed. A helper is a non-exported function whose body is one expression
 * over its parameters (no locals); each call becomes a block that sets fresh locals of the caller to the arguments,
 * then the helper's expression over those locals, so every argument is still evaluated once and in order.
 */

/** A parsed s-expression: an atom (keyword, $name, number, string) or a list. */
type Node = string | Node[];

/** The tokens of WebAssembly text: parentheses, atoms and strings; comments dropped. */
function tokens(text: string): string[] {
  const out: string[] = [];
  const re = /\s+|;;[^\n]*|\(;[\s\S]*?;\)|"(?:[^"\\]|\\.)*"|[()]|[^\s()";]+/g;
  for (const m of text.matchAll(re)) {
    const t = m[0];
    if (/^\s/.test(t) || t.startsWith(';;') || t.startsWith('(;')) continue;
    out.push(t);
  }
  return out;
}

function parse(text: string): Node {
  const stack: Node[][] = [[]];
  for (const t of tokens(text)) {
    if (t === '(') stack.push([]);
    else if (t === ')') {
      const done = stack.pop();
      if (!done || stack.length === 0) throw new Error('wat: unbalanced ")"');
      stack.at(-1)!.push(done);
    } else stack.at(-1)!.push(t);
  }
  if (stack.length !== 1 || stack[0]!.length !== 1) throw new Error('wat: expected one module');
  return stack[0]![0]!;
}

function print(node: Node): string {
  return typeof node === 'string' ? node : `(${node.map(print).join(' ')})`;
}

const head = (node: Node): string | undefined => (Array.isArray(node) ? (node[0] as string) : undefined);

interface Helper {
  params: { name: string; type: string }[];
  result: string;
  body: Node;
}

/** A function that can be inlined, or null: not exported, named parameters, one result, no locals, one expression. */
function asHelper(func: Node[]): Helper | null {
  const params: Helper['params'] = [];
  let result: string | null = null;
  const rest: Node[] = [];
  for (const part of func.slice(2)) {
    if (head(part) === 'export' || head(part) === 'local') return null;
    // An unnamed parameter list, (param i32 i32), leaves nothing to rename.
    if (head(part) === 'param' && !/^\$/.test((part as string[])[1] ?? '')) return null;
    if (head(part) === 'param' && (part as Node[]).length === 3 && /^\$/.test((part as string[])[1]!)) {
      params.push({ name: (part as string[])[1]!, type: (part as string[])[2]! });
    } else if (head(part) === 'result') result = (part as string[])[1]!;
    else rest.push(part);
  }
  return result && rest.length === 1 ? { params, result, body: rest[0]! } : null;
}

/** `node` with every `(local.get $p)` of a parameter named in `rename` reading the renamed local instead. */
function renameLocals(node: Node, rename: Map<string, string>): Node {
  if (typeof node === 'string') return node;
  if (node[0] === 'local.get' && rename.has(node[1] as string)) return ['local.get', rename.get(node[1] as string)!];
  return node.map((child) => renameLocals(child, rename));
}

/**
 * The module text with each helper's calls inlined (helpers calling helpers too) and the helpers removed.
 * `overrides` replaces a helper's body expression by name (for building a variant of the module, such as one with
 * relaxed-SIMD helpers), given as WebAssembly text over the helper's own parameters.
 */
export function inlineHelpers(text: string, overrides: Record<string, string> = {}): string {
  const module = parse(text);
  if (!Array.isArray(module) || module[0] !== 'module') throw new Error('wat: expected (module ...)');
  const helpers = new Map<string, Helper>();
  for (const field of module) {
    if (head(field) !== 'func' || typeof (field as Node[])[1] !== 'string') continue;
    const helper = asHelper(field as Node[]);
    if (helper) helpers.set((field as string[])[1]!, helper);
  }
  for (const [name, body] of Object.entries(overrides)) {
    const helper = helpers.get(name);
    if (!helper) throw new Error(`wat: no helper $${name.replace(/^\$/, '')} to override`);
    helper.body = parse(body);
  }
  const fields: Node[] = [];
  for (const field of module.slice(1)) {
    if (head(field) === 'func' && helpers.has((field as Node[])[1] as string)) continue;
    fields.push(head(field) === 'func' ? inlineInto(field as Node[], helpers) : field);
  }
  return print(['module', ...fields]);
}

function inlineInto(func: Node[], helpers: Map<string, Helper>): Node[] {
  const locals: Node[] = [];
  let site = 0;
  const expand = (node: Node): Node => {
    if (typeof node === 'string') return node;
    const args = node.map(expand);
    const helper = node[0] === 'call' ? helpers.get(node[1] as string) : undefined;
    if (!helper) return args;
    const calls = args.slice(2);
    if (calls.length !== helper.params.length) throw new Error(`wat: ${print(node)}: wrong argument count`);
    const rename = new Map<string, string>();
    const sets = helper.params.map((p, i) => {
      const local = `$inl${site}_${p.name.slice(1)}`;
      rename.set(p.name, local);
      locals.push(['local', local, p.type]);
      return ['local.set', local, calls[i]!];
    });
    site++;
    return ['block', ['result', helper.result], ...sets, expand(renameLocals(helper.body, rename))];
  };
  // The declarations are the leading run of the function's fields (after `func` and its name, when it has one).
  let split = typeof func[1] === 'string' ? 2 : 1;
  while (split < func.length && ['export', 'param', 'result', 'local'].includes(head(func[split]!) ?? '')) split++;
  const body = func.slice(split).map(expand);
  return [...func.slice(0, split), ...locals, ...body];
}
