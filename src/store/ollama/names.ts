import { DEFAULT_TAG, type ModelName } from '../names.ts';

/** Ollama's default registry and namespace: `llama3.2` is registry.ollama.ai/library/llama3.2:latest. */
export const OLLAMA_REGISTRY_HOST = 'registry.ollama.ai';
export const OLLAMA_LIBRARY = 'library';

/** A model name as Ollama files it: `manifests/<host>/<namespace>/<model>/<tag>`. */
export interface OllamaName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

/** A validated pagoda name with Ollama's defaults filled in (`name`, `namespace/name`, `host/namespace/name`). */
export function toOllamaName(name: ModelName): OllamaName {
  const parts = name.repo.split('/');
  const model = parts.pop()!;
  const namespace = parts.pop() ?? OLLAMA_LIBRARY;
  const host = parts.pop() ?? OLLAMA_REGISTRY_HOST;
  return { host, namespace, model, tag: name.tag || DEFAULT_TAG };
}

/** The shortest spelling, as `ollama list` prints it: the default host and `library/` are left out. */
export function shortOllamaName(n: OllamaName): string {
  const repo =
    n.host !== OLLAMA_REGISTRY_HOST
      ? `${n.host}/${n.namespace}/${n.model}`
      : n.namespace !== OLLAMA_LIBRARY
        ? `${n.namespace}/${n.model}`
        : n.model;
  return `${repo}:${n.tag}`;
}
