import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pagodaHome } from '../util/paths.ts';

type Env = Record<string, string | undefined>;

/**
 * pagoda's model store: `PAGODA_MODELS`, else `models/` in pagoda's home. (`OLLAMA_MODELS` names Ollama's own
 * store, which pagoda reads beside it: see `ollamaModelsDir`.)
 */
export function modelsDir(env: Env = process.env): string {
  const dir = env.PAGODA_MODELS;
  if (dir) return resolve(expandHome(dir));
  return join(env === process.env || !env.PAGODA_HOME ? pagodaHome() : env.PAGODA_HOME, 'models');
}

/** Ollama's model store, read-only to pagoda: `OLLAMA_MODELS`, else `~/.ollama/models` as Ollama locates it. */
export function ollamaModelsDir(env: Env = process.env): string {
  return resolve(expandHome(env.OLLAMA_MODELS || join(homedir(), '.ollama', 'models')));
}

/** The Ollama-compatible registry that `pull NAME[:TAG]` reads: `PAGODA_REGISTRY`, else Ollama's own. */
export function registryEndpoint(env: Env = process.env): string {
  return (env.PAGODA_REGISTRY || 'https://registry.ollama.ai').replace(/\/+$/, '');
}

/** The Hugging Face hub cache, located the way huggingface_hub does it. */
export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(expandHome(env.HF_HUB_CACHE));
  const home = env.HF_HOME
    ? expandHome(env.HF_HOME)
    : join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return resolve(home, 'hub');
}

/** The Hub's base URL: `HF_ENDPOINT`, else huggingface.co. */
export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

/** `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`); undefined when neither is set. */
export function hubToken(env: Env = process.env): string | undefined {
  return env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}
