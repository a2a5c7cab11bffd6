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
