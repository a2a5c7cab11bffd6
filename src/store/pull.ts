import { UserError } from '../util/errors.ts';
import { isHfGgufName, pullGgufFromHub } from './hf-gguf.ts';
import { type PullOptions, pullFromHub } from './hub.ts';
import { isHubRepoId, parseModelName } from './names.ts';
import { pullFromRegistry } from './ollama/pull.ts';

/** What a pull made: the name it is found under now, and one line saying where it went. */
export interface Pulled {
  name: string;
  summary: string;
}

/**
 * `pull` by the name's shape: `org/repo[:revision]` from the Hugging Face Hub into its cache (as before),
 * `hf.co/org/repo[:quant]` one GGUF file of a Hub repo into that cache, a bare `name[:tag]` from the
 * Ollama-compatible registry into pagoda's store.
 */
export async function pullModel(ref: string, opts: PullOptions = {}): Promise<Pulled> {
  const name = parseModelName(ref);
  if (isHubRepoId(name.repo)) {
    const snap = await pullFromHub(ref, opts);
    return { name: ref, summary: `pulled ${snap.repo} at ${snap.commit.slice(0, 12)} into ${snap.dir}` };
  }
  if (isHfGgufName(name.repo)) return { name: ref, summary: `pulled ${ref} into ${await pullGgufFromHub(ref, opts)}` };
  if (!name.repo.includes('/')) {
    const stored = await pullFromRegistry(ref, opts);
    return { name: stored.name, summary: `pulled ${stored.name} into the store` };
  }
  throw new UserError(
    `cannot pull "${ref}": give a registry name (llama3.2[:tag]), a Hub repo id (org/repo[:revision]) or hf.co/org/repo[:quant]`,
  );
}
