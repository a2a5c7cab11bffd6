import { statSync } from 'node:fs';
import { listCachedModels, weightsSize } from './hf-cache.ts';
import { listCachedGgufs } from './hf-gguf.ts';
import { hubCacheDir, modelsDir, ollamaModelsDir } from './locations.ts';
import type { Manifest } from './manifest.ts';
import { ModelStore } from './model-store.ts';
import { OllamaStore } from './ollama/store.ts';
import { resolveModel } from './resolve.ts';

/** One row of `pagoda list` and GET /api/tags. */
export interface CatalogEntry {
  name: string;
  origin: 'store' | 'ollama' | 'hf-cache';
  /** The model folder or GGUF file, or null when a stored model's base is missing or Ollama's is damaged. */
  path: string | null;
  digest: string;
  modifiedAt: Date;
  /** Bytes of weights. */
  size: number;
  manifest: Manifest | null;
  problem?: string;
}

/**
 * Every model known by name: the store's manifests, Ollama's models (those a stored name does not hide), then the
 * Hugging Face cache's model repos and single-file GGUFs (as `hf.co/org/repo:QUANT`).
 */
export function listModels(env: Record<string, string | undefined> = process.env): CatalogEntry[] {
  const out: CatalogEntry[] = [];
  for (const stored of new ModelStore(modelsDir(env)).list()) {
    const entry: CatalogEntry = {
      name: stored.name,
      origin: 'store',
      path: null,
      digest: stored.digest,
      modifiedAt: stored.modifiedAt,
      size: 0,
      manifest: stored.manifest,
    };
    try {
      const resolved = resolveModel(stored.name, { env });
      entry.path = resolved.path;
      entry.size = sizeOf(resolved.path);
    } catch (err) {
      entry.problem = (err as Error).message;
    }
    out.push(entry);
  }
  const ollama = new OllamaStore(ollamaModelsDir(env));
  for (const name of ollama.names()) {
    if (out.some((e) => e.name === name)) continue;
    try {
      const m = ollama.get(name)!;
      out.push({ ...m, origin: 'ollama', path: m.manifest.source.path, manifest: m.manifest });
    } catch (err) {
      const problem = (err as Error).message;
      out.push({
        name,
        origin: 'ollama',
        path: null,
        digest: '',
        modifiedAt: new Date(0),
        size: 0,
        manifest: null,
        problem,
      });
    }
  }
  for (const snap of listCachedModels(hubCacheDir(env))) {
    out.push({
      name: `${snap.repo}:latest`,
      origin: 'hf-cache',
      path: snap.dir,
      digest: snap.commit,
      modifiedAt: statSync(snap.dir).mtime,
      size: sizeOf(snap.dir),
      manifest: null,
    });
  }
  for (const gguf of listCachedGgufs(hubCacheDir(env))) {
    const stat = statSync(gguf.path);
    out.push({
      ...gguf,
      origin: 'hf-cache',
      digest: gguf.commit,
      modifiedAt: stat.mtime,
      size: stat.size,
      manifest: null,
    });
  }
  return out;
}

function sizeOf(path: string): number {
  return statSync(path).isDirectory() ? weightsSize(path) : statSync(path).size;
}
