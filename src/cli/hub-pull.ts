import { isModelReference } from '../runner/load.ts';
import { pullFromHub } from '../store/hub.ts';
import { isHubRepoId, parseModelName } from '../store/names.ts';
import { pullProgressRenderer } from './progress.ts';

/** `org/repo[:revision]`, a name only the Hub can resolve (a prompt with spaces never is one). */
function isHubReference(arg: string): boolean {
  try {
    return isHubRepoId(parseModelName(arg).repo);
  } catch {
    return false;
  }
}

/**
 * A Hub repo id that is not here yet, pulled first with `pagoda pull`'s progress display, as `ollama run` and
 * `vllm serve` do; true when it was pulled. Anything else (found, a path, a store name) is left to the loader.
 */
export async function pullMissingHubModel(ref: string): Promise<boolean> {
  if (isModelReference(ref) || !isHubReference(ref)) return false;
  process.stderr.write(`${ref} is not here yet: pulling it from the Hugging Face Hub\n`);
  const progress = pullProgressRenderer();
  try {
    await pullFromHub(ref, { onProgress: progress.onProgress });
  } finally {
    progress.stop();
  }
  return true;
}
