import { listModels } from '../store/catalog.ts';
import { nameProblem } from '../store/names.ts';
import { type ResolvedModel, resolveModel } from '../store/resolve.ts';
import type { ModelEntry } from './models.ts';

/** A resolved store or cache model as a registry entry, with its store's digest. */
export function resolvedEntry(resolved: ResolvedModel): ModelEntry {
  return {
    name: resolved.name,
    path: resolved.path,
    ref: resolved.name,
    ...(resolved.digest && { digest: resolved.digest }),
  };
}

/** A store or Hugging Face cache model by name (never a path: request names do not reach the file system). */
export function storeEntry(name: string): ModelEntry | null {
  if (nameProblem(name)) return null;
  try {
    return resolvedEntry(resolveModel(name));
  } catch {
    return null;
  }
}

/** The models the stores (pagoda's, Ollama's, the Hugging Face cache) hold that resolve, with their digests. */
export function catalogEntries(): ModelEntry[] {
  return listModels()
    .filter((c) => c.path)
    .map((c) => ({ name: c.name, path: c.path!, ref: c.name, ...(c.digest && { digest: c.digest }) }));
}
