import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ArgType, KernelDecl } from '../../src/backend/cuda/kernel.ts';
import { kernelsDir } from '../../src/backend/cuda/modules.ts';

/** One parameter of an `extern "C" __global__` signature: its C name and type (`ptr` for any pointer). */
export interface CParam {
  name: string;
  /** An ArgType, or the C type as written when it is none of them. */
  type: ArgType | string;
}

export interface CKernel {
  name: string;
  params: CParam[];
}

const SCALARS: Record<string, ArgType> = {
  int: 'i32',
  'signed int': 'i32',
  unsigned: 'u32',
  'unsigned int': 'u32',
  'long long': 'i64',
  'long long int': 'i64',
  float: 'f32',
};

/** Comments removed and continued lines joined, so each `#define` is one line. */
function clean(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\\\n/g, ' ');
}

/** The index of the parenthesis closing the one at `open`. */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses after: ${text.slice(open, open + 80)}`);
}

/**
 * The source with every function-like macro whose body defines a kernel expanded where it is invoked
 * (`PAGODA_FLASH_PREFILL(64)` -> `... flash_prefill_hd64(...)`, `##` pasted), and those `#define` lines dropped.
 */
function expandKernelMacros(text: string): string {
  const defines = [...text.matchAll(/^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)(.*)$/gm)];
  let out = text;
  const expansions: string[] = [];
  for (const [line, name, params, body] of defines) {
    if (!/__global__/.test(body!)) continue;
    out = out.replace(line, '');
    const names = params!.split(',').map((p) => p.trim());
    for (const call of out.matchAll(new RegExp(`^[ \\t]*${name}\\s*\\(([^()]*)\\)`, 'gm'))) {
      const args = call[1]!.split(',').map((a) => a.trim());
      let expanded = body!;
      names.forEach((p, i) => {
        expanded = expanded.replace(new RegExp(`\\b${p}\\b`, 'g'), args[i] ?? '');
      });
      expansions.push(expanded.replace(/\s*##\s*/g, ''));
    }
  }
  return [out, ...expansions].join('\n');
}

function parseParam(text: string): CParam {
  const pointer = text.includes('*');
  const words = text
    .replace(/\*/g, ' ')
    .split(/\s+/)
    .filter((w) => w && !['const', '__restrict__', 'volatile'].includes(w));
  const name = words.pop() ?? '';
  const ctype = words.join(' ');
  return { name, type: pointer ? 'ptr' : (SCALARS[ctype] ?? ctype) };
}

/** Every `extern "C" __global__` kernel of a `.cu` source, macro instantiations included, with its parameters. */
export function parseKernels(source: string): CKernel[] {
  const text = expandKernelMacros(clean(source));
  const kernels: CKernel[] = [];
  for (const m of text.matchAll(/extern\s+"C"\s+__global__\s+/g)) {
    let i = m.index + m[0].length;
    let name = '';
    while (!name) {
      const word = /^\s*(\w+)/.exec(text.slice(i));
      if (!word) throw new Error(`no kernel name after: ${text.slice(m.index, m.index + 80)}`);
      i += word[0].length;
      if (word[1] === '__launch_bounds__') i = closing(text, text.indexOf('(', i)) + 1;
      else if (word[1] !== 'void') name = word[1]!;
    }
    const open = text.indexOf('(', i);
    const list = text.slice(open + 1, closing(text, open)).trim();
    kernels.push({ name, params: list === '' || list === 'void' ? [] : list.split(',').map(parseParam) });
  }
  return kernels;
}

/** `block_size_log2` -> `blockSizeLog2`: how a declaration names a `.cu` parameter. */
export const camel = (snake: string) => snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * What disagrees between the `.cu` kernels (by file name without `.cu`) and the declarations: a declared kernel
 * the file lacks, a kernel nobody declares, one declared twice, and per parameter its count, order, name and type.
 */
export function signatureProblems(sources: ReadonlyMap<string, CKernel[]>, decls: readonly KernelDecl[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const d of decls) {
    const where = `kernels/${d.file}.cu ${d.name}`;
    if (seen.has(`${d.file}/${d.name}`)) problems.push(`${where}: declared twice`);
    seen.add(`${d.file}/${d.name}`);
    const k = sources.get(d.file)?.find((c) => c.name === d.name);
    if (!k) {
      problems.push(`${where}: declared, but the .cu has no such extern "C" __global__ kernel`);
      continue;
    }
    const declared = Object.entries(d.args);
    if (declared.length !== k.params.length) {
      problems.push(`${where}: the .cu takes ${k.params.length} parameters, the declaration ${declared.length}`);
    }
    k.params.forEach((p, i) => {
      const [name, type] = declared[i] ?? ['(none)', '(none)'];
      const what = `${where} parameter ${i + 1} (${p.name})`;
      if (name !== camel(p.name)) problems.push(`${what}: declared as ${name}, expected ${camel(p.name)}`);
      if (type !== p.type) problems.push(`${what}: the .cu has ${p.type}, the declaration ${type}`);
    });
  }
  for (const [file, kernels] of sources) {
    for (const k of kernels) {
      if (!seen.has(`${file}/${k.name}`)) problems.push(`kernels/${file}.cu ${k.name}: no declaration`);
    }
  }
  return problems;
}

/** Every kernel of src/backend/cuda/kernels/*.cu, by file name without `.cu`. */
export function kernelSources(read: (path: string) => string): Map<string, CKernel[]> {
  const files = readdirSync(kernelsDir).filter((f) => f.endsWith('.cu'));
  return new Map(files.map((f) => [f.replace(/\.cu$/, ''), parseKernels(read(join(kernelsDir, f)))]));
}

/** Every KernelDecl exported by a src/backend/cuda module, directly or in an exported table (per head size). */
export async function exportedDeclarations(): Promise<KernelDecl[]> {
  const dir = dirname(kernelsDir);
  const found = new Set<KernelDecl>();
  const visit = (v: unknown, depth: number) => {
    if (v instanceof KernelDecl) found.add(v);
    else if (depth > 0 && v && Object.getPrototypeOf(v) === Object.prototype) {
      for (const x of Object.values(v)) visit(x, depth - 1);
    }
  };
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as Record<string, unknown>;
    for (const v of Object.values(mod)) visit(v, 1);
  }
  return [...found];
}
