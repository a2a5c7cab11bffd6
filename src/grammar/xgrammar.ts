import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname } from 'node:path';
import { compileFunction } from 'node:vm';
import type * as Xgrammar from '@mlc-ai/web-xgrammar';

export type XgrammarModule = typeof Xgrammar;
export type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from '@mlc-ai/web-xgrammar';

let loaded: XgrammarModule | null = null;
let lastError = '';

/**
 * xgrammar's WebAssembly build (@mlc-ai/web-xgrammar, pinned: its layout is relied on). Its bundle is a UMD script
 * that the package labels an ES module, which Node cannot import (the script calls `require`); so it is run here as
 * the CommonJS script it is, its one `import('module')` answered with node:module (a compiled function has no
 * dynamic import of its own), and its error output kept for `takeXgrammarError` instead of printed.
 */
export function xgrammar(): XgrammarModule {
  if (loaded) return loaded;
  const require = nodeModule.createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-xgrammar');
  const source = readFileSync(file, 'utf8')
    .replace("import('module')", 'Promise.resolve(__nodeModule)')
    .replace('binding = await Module()', 'binding = await Module(__moduleArg)');
  const params = ['exports', 'require', 'module', '__filename', '__dirname', '__nodeModule', '__moduleArg'];
  const run = compileFunction(source, params, { filename: file });
  const module = { exports: {} as XgrammarModule };
  const moduleArg = {
    printErr: (text: string) => {
      if (text.startsWith('[FATAL]')) lastError = text;
    },
  };
  run.call(module.exports, module.exports, require, module, file, dirname(file), nodeModule, moduleArg);
  loaded = module.exports;
  return loaded;
}

/**
 * The reason xgrammar gave for the failure just thrown (it aborts with a bare "Aborted()" and prints the reason):
 * its message without the source location, or `fallback`.
 */
export function takeXgrammarError(fallback: string): string {
  const text = lastError.replace(/^\[FATAL\]\s*\S+:\d+:\s*/, '').replace(/^Check failed: \(.*?\) is false: /, '');
  lastError = '';
  return text.trim() || fallback;
}
