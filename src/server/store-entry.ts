import { listModels } from '../store/catalog.ts';
import { nameProblem } from '../store/names.ts';
import { resolveModel } from '../store/resolve.ts';
import type { ModelEntry } from './models.ts';

/** A store or Hugging Face cache model by name (never a path: request names do not reach the file system). */
export function storeEntry(name: string): ModelEntry | null {
  if (nameProblem(name)) return null;
  try {
    const resolved = resolveModel(name);
    return { name: resolved.name, path: resolved.path, ref: resolved.name };
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
