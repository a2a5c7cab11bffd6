import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { downloadBlob } from '../download.ts';
import type { PullOptions } from '../hub.ts';
import { modelsDir, registryEndpoint } from '../locations.ts';
import { ModelStore, type StoredModel } from '../model-store.ts';
import { formatModelName, parseModelName } from '../names.ts';
import { layerKind, manifestFromLayers } from './layers.ts';
import { blobFileName, type Layer } from './manifest.ts';
import { OLLAMA_LIBRARY } from './names.ts';
import { blobUrl, getRegistryManifest, registryClient, registryError } from './registry.ts';

const PROGRESS_INTERVAL_MS = 100;

/**
 * `pagoda pull NAME[:TAG]`: a model of the registry's library (`PAGODA_REGISTRY`, else registry.ollama.ai) into
 * pagoda's store: its blobs as `blobs/sha256-<hex>` (resumed with Range, size and sha256 checked), then a manifest
 * `manifests/<name>/<tag>.json` over the GGUF blob with the template, system prompt, parameters and license.
 */
export async function pullFromRegistry(ref: string, opts: PullOptions = {}): Promise<StoredModel> {
  const env = opts.env ?? process.env;
  const name = parseModelName(ref);
  if (name.repo.includes('/')) {
    throw new UserError(`cannot pull "${ref}" from the registry: give a library name such as llama3.2 or llama3.2:1b`);
  }
  const shown = formatModelName(name);
  const repo = `${OLLAMA_LIBRARY}/${name.repo}`;
  const registry = registryClient(registryEndpoint(env), opts.fetch);
  const store = new ModelStore(modelsDir(env));
  const blobsDir = join(store.root, 'blobs');
  const emit = opts.onProgress ?? (() => {});

  emit({ status: 'pulling manifest' });
  const manifest = await getRegistryManifest(registry, repo, name.tag, shown);
  // One line naming the model and the registry for what its manifest or layers hold.
  const checked = <T>(f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new UserError(`${shown} from ${registry.endpoint}: ${(err as Error).message}`);
    }
  };
  const model = checked(() => {
    const kinds = manifest.layers.map(layerKind);
    return manifest.layers[kinds.indexOf('model')];
  });
  for (const layer of manifest.layers) {
    const dest = join(blobsDir, blobFileName(layer.digest));
    const status = `pulling ${layer.digest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
    // A blob is only ever moved in place once its size and digest were checked.
    if (!existsSync(dest) || statSync(dest).size !== layer.size) {
      let last = 0;
      await downloadBlob({
        hub: registry,
        repo,
        file: layer.digest,
        url: blobUrl(registry, repo, layer.digest),
        dest,
        size: layer.size,
        etag: layer.digest.slice('sha256:'.length),
        signal: opts.signal,
        statusError: (code) => registryError(registry, code, shown, `blob ${layer.digest}`),
        onProgress: (completed) => {
          const now = Date.now();
          if (now - last < PROGRESS_INTERVAL_MS) return;
          last = now;
          emit({ status, digest: layer.digest, total: layer.size, completed });
        },
      });
    }
    emit({ status, digest: layer.digest, total: layer.size, completed: layer.size });
  }
  emit({ status: 'verifying sha256 digest' });
  const blobs = {
    path: (layer: Layer) => join(blobsDir, blobFileName(layer.digest)),
    text: (layer: Layer) => readFileSync(join(blobsDir, blobFileName(layer.digest)), 'utf8'),
  };
  const from = `${new URL(registry.endpoint).host}/${repo}:${name.tag}`;
  const layers = checked(() => manifestFromLayers(manifest, blobs, from, new Date()));
  emit({ status: 'writing manifest' });
  const result = store.put(shown, { ...layers, source: { kind: 'blob', digest: model!.digest } });
  emit({ status: 'success' });
  return result;
}
