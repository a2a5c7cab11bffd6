/** Go template truth: false, 0, nil, and empty strings, lists and maps are false. */
export function isTrue(v: unknown): boolean {
  if (v == null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/**
 * How `{{ value }}` prints: like Go's fmt.Print for the value kinds templates see; a value with a `String` method
 * prints what it returns (Go's fmt.Stringer: Ollama's tools and tool calls print as JSON).
 */
export function printValue(v: unknown): string {
  if (v == null) return '';
  if (typeof v === 'string') return v;
  const stringer = (v as { String?: unknown }).String;
  if (typeof v === 'object' && typeof stringer === 'function') return String(stringer.call(v));
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** `and` / `or` evaluate their arguments only as far as needed (Go 1.18+). */
export const lazyBuiltins: Record<string, (args: (() => unknown)[]) => unknown> = {
  and: (args) => {
    let v: unknown;
    for (const a of need(args, 1)) if (!isTrue((v = a()))) return v;
    return v;
  },
  or: (args) => {
    let v: unknown;
    for (const a of need(args, 1)) if (isTrue((v = a()))) return v;
    return v;
  },
};

export const builtins: Record<string, (...args: unknown[]) => unknown> = {
  not: (...a) => !isTrue(arity(a, 1)[0]),
  eq: (...a) => {
    const [x, ...rest] = need(a, 2);
    return rest.some((y) => equal(x, y));
  },
  ne: (...a) => !equal(...(arity(a, 2) as [unknown, unknown])),
  lt: (...a) => compare(a) < 0,
  le: (...a) => compare(a) <= 0,
  gt: (...a) => compare(a) > 0,
  ge: (...a) => compare(a) >= 0,
  len: (...a) => {
    const [v] = arity(a, 1);
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new Error(`len of ${typeof v}`);
  },
  index: (...a) => {
    let [v, ...keys] = need(a, 1);
    for (const k of keys) {
      if (Array.isArray(v) || typeof v === 'string') {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= v.length) throw new Error(`index out of range: ${k}`);
        v = v[i];
      } else if (v && typeof v === 'object') v = (v as Record<string, unknown>)[String(k)];
      else throw new Error(`can't index item of type ${typeof v}`);
    }
    return v;
  },
  slice: (...a) => {
    const [v, ...bounds] = need(a, 1);
    if (!Array.isArray(v) && typeof v !== 'string') throw new Error(`can't slice item of type ${typeof v}`);
    const [i = 0, j = v.length] = bounds.map(Number);
    if (!(0 <= i && i <= j && j <= v.length)) throw new Error(`slice index out of range: ${i}:${j}`);
    return v.slice(i, j);
  },
  print: (...a) =>
    a
      .map((v, i) => (i > 0 && typeof v !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + printValue(v))
      .join(''),
  println: (...a) => `${a.map(printValue).join(' ')}\n`,
  printf: (...a) => sprintf(String(need(a, 1)[0]), a.slice(1)),
  /** Ollama adds `json` for tool definitions. */
  json: (...a) => JSON.stringify(arity(a, 1)[0] ?? null),
};

function need<T>(args: T[], n: number): T[] {
  if (args.length < n) throw new Error(`wrong number of args: want at least ${n}, got ${args.length}`);
  return args;
}

function arity<T>(args: T[], n: number): T[] {
  if (args.length !== n) throw new Error(`wrong number of args: want ${n}, got ${args.length}`);
  return args;
}

function equal(x: unknown, y: unknown): boolean {
  if (x == null || y == null) return x == null && y == null;
  if (typeof x === 'object' || typeof y === 'object') throw new Error('incomparable types');
  return x === y;
}

function compare(args: unknown[]): number {
  const [x, y] = arity(args, 2);
  if (typeof x !== typeof y || (typeof x !== 'number' && typeof x !== 'string'))
    throw new Error('incompatible types for comparison');
  return (x as number) < (y as number) ? -1 : x === y ? 0 : 1;
}

/** The verbs templates use: %s %v %d %q %f and %%. */
function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%(\.\d+)?([svdqf%])/g, (_, precision: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const v = args[i++];
    if (verb === 'q') return JSON.stringify(printValue(v));
    if (verb === 'd') return String(Math.trunc(Number(v)));
    if (verb === 'f') return Number(v).toFixed(precision ? Number(precision.slice(1)) : 6);
    return printValue(v);
  });
}
