import { UserError } from '../../util/errors.ts';
import { type HubClient, request } from '../hub-api.ts';
import { type OllamaManifest, parseOllamaManifest } from './manifest.ts';

/** Manifests larger than this are not a model's. */
const MAX_MANIFEST_BYTES = 1 << 20;
const ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json';

/** An Ollama-compatible registry (registry.ollama.ai, or an imitation of it in tests). */
export function registryClient(endpoint: string, fetchImpl: typeof fetch = fetch): HubClient {
  return { endpoint, fetch: fetchImpl, label: 'the registry' };
}

/** GET /v2/<namespace>/<model>/manifests/<tag>, checked as the store reader checks Ollama's own manifests. */
export async function getRegistryManifest(
  registry: HubClient,
  repo: string,
  tag: string,
  shown: string,
): Promise<OllamaManifest> {
  const url = `${registry.endpoint}/v2/${repo}/manifests/${encodeURIComponent(tag)}`;
  const res = await request(registry, url, { headers: { accept: ACCEPT } }, shown);
  if (!res.ok) {
    await res.body?.cancel();
    throw registryError(registry, res.status, shown, 'manifest');
  }
  const text = await res.text();
  if (text.length > MAX_MANIFEST_BYTES) throw new UserError(`${url}: the manifest is over ${MAX_MANIFEST_BYTES} bytes`);
  try {
    return parseOllamaManifest(text);
  } catch (err) {
    throw new UserError(`${url}: not a model manifest (${(err as Error).message})`);
  }
}

export function blobUrl(registry: HubClient, repo: string, digest: string): string {
  return `${registry.endpoint}/v2/${repo}/blobs/${digest}`;
}

/** The registry's refusals, one line each. */
export function registryError(registry: HubClient, status: number, shown: string, what: string): UserError {
  if (status === 404) return new UserError(`${shown}: ${what} not found in the registry at ${registry.endpoint} (404)`);
  return new UserError(`the registry at ${registry.endpoint} answered ${status} for ${shown} (${what})`);
}
