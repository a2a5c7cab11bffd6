import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * What each folder of src/ may import (besides itself), from the bottom up: util → primitives → loader, store,
 * gotemplate, grammar, tools and backends → models → runner → engine → server / cli. A folder absent here may
 * import nothing of src/. (The repository's benchmark scripts live in bench/, outside src/.)
 */
const BASE = ['util', 'primitives'];
const MIDDLE = [...BASE, 'gotemplate', 'loader', 'store', 'backend', 'grammar'];
const BELOW_ENGINE = [...MIDDLE, 'models', 'runner'];

export const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  primitives: ['util'],
  gotemplate: BASE,
  loader: [...BASE, 'gotemplate'],
  store: [...BASE, 'gotemplate', 'loader'],
  backend: BASE,
  grammar: BASE,
  tools: ['util'],
  models: [...BASE, 'loader', 'backend'],
  runner: [...MIDDLE, 'models'],
  engine: BELOW_ENGINE,
  server: [...BELOW_ENGINE, 'tools', 'engine'],
  cli: [...BELOW_ENGINE, 'tools', 'engine', 'server'],
};

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The relative module paths a source text imports (static, side-effect and dynamic imports). */
export function importsOf(source: string): string[] {
  return [...source.matchAll(IMPORT)].map((m) => m[1]!);
}

/** Every import from `file` (a path under `srcRoot`) that reaches a folder its own may not import. */
export function layerViolations(srcRoot: string, file: string, source: string): string[] {
  const from = relative(srcRoot, file).split('/')[0]!;
  const allowed = ALLOWED[from] ?? [];
  const out: string[] = [];
  for (const spec of importsOf(source)) {
    const target = relative(srcRoot, normalize(join(dirname(file), spec)));
    const to = target.split('/')[0]!;
    if (to !== from && !target.startsWith('..') && !allowed.includes(to)) {
      out.push(`${relative(srcRoot, file)} imports ${target} (${from}/ may not import ${to}/)`);
    }
  }
  return out;
}

/** Every .ts / .mjs file under `dir`. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

export function treeViolations(srcRoot: string): string[] {
  return sourceFiles(srcRoot).flatMap((f) => layerViolations(srcRoot, f, readFileSync(f, 'utf8')));
}
