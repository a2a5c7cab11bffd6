import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One layer of a fake Ollama model: its kind (`model`, `template`, `params`, ...) and content. */
export interface FakeLayer {
  kind: string;
  content: Buffer | string;
}

/** The smallest file with GGUF's header (v3, no tensors, no metadata): enough to be recognised as GGUF. */
export const EMPTY_GGUF = Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), Buffer.alloc(16)]);

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** The manifest Ollama would write for these layers (Docker's v2 schema, layers in order). */
export function ollamaManifest(layers: FakeLayer[]) {
  const descriptor = (mediaType: string, content: Buffer | string) => ({
    mediaType,
    digest: sha256(content),
    size: Buffer.byteLength(content),
  });
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: descriptor('application/vnd.docker.container.image.v1+json', '{}'),
    layers: layers.map((l) => descriptor(`application/vnd.ollama.image.${l.kind}`, l.content)),
  };
}

/**
 * Writes a model into an Ollama store folder as Ollama lays it out: `blobs/sha256-<hex>` and
 * `manifests/<host>/<namespace>/<model>/<tag>`. `path` is that manifest path's last four parts.
 */
export function addToOllamaStore(root: string, path: string, layers: FakeLayer[], manifest?: unknown): string {
  mkdirSync(join(root, 'blobs'), { recursive: true });
  for (const l of layers) writeFileSync(join(root, 'blobs', sha256(l.content).replace(':', '-')), l.content);
  const file = join(root, 'manifests', ...path.split('/'));
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, JSON.stringify(manifest ?? ollamaManifest(layers)));
  return file;
}

/** Every file under `dir` with its size and modification time, to show that nothing was written there. */
export function treeState(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(`${p} ${s.size} ${s.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}
