import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hasGgufMagic } from '../loader/gguf/read.ts';
import { UserError } from '../util/errors.ts';
import { blobFolderPath } from './blob-folder.ts';
import { findSnapshot } from './hf-cache.ts';
import { findCachedGguf, HF_HOST, isHfGgufName } from './hf-gguf.ts';
import { expandHome, hubCacheDir, modelsDir, ollamaModelsDir } from './locations.ts';
import type { AdapterSource, Manifest, ModelSource } from './manifest.ts';
import { ModelStore } from './model-store.ts';
import { formatModelName, isHubRepoId, looksLikePath, nameProblem, parseModelName } from './names.ts';
import { blobFileName } from './ollama/manifest.ts';
import { OllamaStore } from './ollama/store.ts';

/** A model reference turned into files on disk, with whatever a Modelfile added. */
export interface ResolvedModel {
  /** `name:tag` for stored and cached models (as `ollama list` spells Ollama's), the path as given for paths. */
  name: string;
  /** The Hugging Face model folder (config.json, safetensors, tokenizer) or the .gguf file. */
  path: string;
  format: 'safetensors' | 'gguf';
  origin: 'store' | 'ollama' | 'hf-cache' | 'path';
  /** Parameters, system prompt, Go template and messages from either store; null for plain folders. */
  manifest: Manifest | null;
  /** Stable id: the manifest's sha256, the snapshot's commit, or a hash of the path. */
  digest: string;
  modifiedAt: Date;
}

export interface ResolveOptions {
  env?: Record<string, string | undefined>;
  /** Local commands may name folders and files; names from the network never become paths. */
  allowPaths?: boolean;
  /** Where relative paths start (a Modelfile's folder); the working directory by default. */
  baseDir?: string;
}

/**
 * Finds a model by reference: pagoda's store (`name:tag`), then Ollama's store (read in place), then the Hugging
 * Face cache (`org/repo`, tag = revision, `latest` = main; `hf.co/org/repo:quant`, a GGUF file of the main branch),
 * then — for local commands only — a folder or GGUF path.
 */
export function resolveModel(ref: string, opts: ResolveOptions = {}): ResolvedModel {
  const env = opts.env ?? process.env;
  if (opts.allowPaths && looksLikePath(ref)) return resolvePath(ref, opts.baseDir);
  const problem = nameProblem(ref);
  if (problem) {
    if (opts.allowPaths && existsSync(resolve(opts.baseDir ?? '.', ref))) return resolvePath(ref, opts.baseDir);
    throw new UserError(`invalid model name ${JSON.stringify(ref)}: ${problem}`);
  }
  const name = parseModelName(ref);
  const stored = new ModelStore(modelsDir(env)).get(name);
  if (stored) {
    const { path, format } = sourcePath(stored.manifest.source, stored.name, env);
    return {
      name: stored.name,
      path,
      format,
      origin: 'store',
      manifest: stored.manifest,
      digest: stored.digest,
      modifiedAt: stored.modifiedAt,
    };
  }
  const ollama = new OllamaStore(ollamaModelsDir(env)).get(name);
  if (ollama) {
    return {
      name: ollama.name,
      path: ollama.manifest.source.path,
      format: 'gguf',
      origin: 'ollama',
      manifest: ollama.manifest,
      digest: ollama.digest,
      modifiedAt: ollama.modifiedAt,
    };
  }
  if (isHubRepoId(name.repo)) {
    const snap = findSnapshot(hubCacheDir(env), name.repo, revisionOf(name.tag));
    if (snap) {
      return {
        name: formatModelName(name),
        path: snap.dir,
        format: 'safetensors',
        origin: 'hf-cache',
        manifest: null,
        digest: snap.commit,
        modifiedAt: statSync(snap.dir).mtime,
      };
    }
  }
  if (isHfGgufName(name.repo)) {
    const gguf = findCachedGguf(hubCacheDir(env), name.repo.slice(HF_HOST.length + 1), name.tag);
    if (gguf) {
      return {
        name: formatModelName(name),
        path: gguf.path,
        format: 'gguf',
        origin: 'hf-cache',
        manifest: null,
        digest: gguf.commit,
        modifiedAt: statSync(gguf.path).mtime,
      };
    }
  }
  if (opts.allowPaths && existsSync(resolve(opts.baseDir ?? '.', ref))) return resolvePath(ref, opts.baseDir);
  throw new UserError(
    `model "${ref}" not found in the store (${modelsDir(env)}), Ollama's store (${ollamaModelsDir(env)}) ` +
      `or the Hugging Face cache (${hubCacheDir(env)}); pull it with \`pagoda pull ${ref}\``,
  );
}

/** Tag `latest` is the Hub's `main` branch; any other tag is a revision (branch, tag or commit). */
export function revisionOf(tag: string): string {
  return tag === 'latest' ? 'main' : tag;
}

function resolvePath(ref: string, baseDir = '.'): ResolvedModel {
  const path = resolve(baseDir, expandHome(ref));
  const { format } = checkModelPath(path, ref);
  return {
    name: ref,
    path,
    format,
    origin: 'path',
    manifest: null,
    digest: createHash('sha256').update(path).digest('hex'),
    modifiedAt: statSync(path).mtime,
  };
}

/** A folder with config.json or a GGUF file (known by its magic bytes); anything else is refused, the path named. */
export function checkModelPath(path: string, shown: string): { format: 'safetensors' | 'gguf' } {
  if (!existsSync(path)) throw new UserError(`${shown}: no such model folder or .gguf file`);
  if (statSync(path).isDirectory()) {
    if (!existsSync(join(path, 'config.json'))) throw new UserError(`${shown}: not a model folder (no config.json)`);
    return { format: 'safetensors' };
  }
  if (hasGgufMagic(path)) return { format: 'gguf' };
  throw new UserError(`${shown}: not a model folder or a GGUF file`);
}

/** The folder a manifest's ADAPTER names: as given, or its uploaded files' folder of blobs. */
export function adapterPath(adapter: AdapterSource, env: Record<string, string | undefined>): string {
  return adapter.kind === 'hf-folder' ? adapter.path : blobFolderPath(modelsDir(env), adapter.files);
}

/** The files a manifest's source names: a cache snapshot, a folder, a GGUF file, a blob or a folder of blobs. */
export function sourcePath(
  source: ModelSource,
  name: string,
  env: Record<string, string | undefined>,
): { path: string; format: 'safetensors' | 'gguf' } {
  if (source.kind === 'hf-repo') {
    const snap = findSnapshot(hubCacheDir(env), source.repo, source.revision);
    if (!snap) {
      throw new UserError(
        `model "${name}" is built on ${source.repo}, which is not in the Hugging Face cache; run \`pagoda pull ${source.repo}\``,
      );
    }
    return { path: snap.dir, format: 'safetensors' };
  }
  const path =
    source.kind === 'blob'
      ? join(modelsDir(env), 'blobs', blobFileName(source.digest))
      : source.kind === 'blob-folder'
        ? blobFolderPath(modelsDir(env), source.files)
        : source.path;
  return { path, ...checkModelPath(path, `model "${name}" (${path})`) };
}
