import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { type ModelName, nameProblem, parseModelName } from '../names.ts';
import { type BlobSource, type GgufManifest, manifestFromLayers } from './layers.ts';
import { blobFileName, type Layer, parseOllamaManifest } from './manifest.ts';
import { type OllamaName, shortOllamaName, toOllamaName } from './names.ts';

/** A model in Ollama's store, seen as pagoda's store would keep it (the weights stay Ollama's blob). */
export interface OllamaModel {
  /** As `ollama list` spells it, tag included: `llama3.2:latest`, `hf.co/org/repo:Q4_K_M`. */
  name: string;
  /** The manifest as pagoda's store would keep it: `source.path` is Ollama's GGUF blob. */
  manifest: GgufManifest;
  /** sha256 of the manifest file: Ollama's model ID. */
  digest: string;
  modifiedAt: Date;
  /** Bytes of all layers, as `ollama list` counts them. */
  size: number;
}

const parsed = (name: string | ModelName): ModelName => (typeof name === 'string' ? parseModelName(name) : name);

/** Text layers (template, system, params, license) larger than this are not a model's text. */
const MAX_TEXT_LAYER = 4 * 2 ** 20;

/**
 * Ollama's model store, read-only: `manifests/<host>/<namespace>/<model>/<tag>` (JSON) naming `blobs/sha256-<hex>`.
 * Nothing outside `root` is read: names and digests are validated, and every file's real path must stay inside.
 */
export class OllamaStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** True when Ollama has a manifest under `name`, readable or not. */
  has(name: string | ModelName): boolean {
    try {
      return statSync(this.manifestFile(toOllamaName(parsed(name)))).isFile();
    } catch {
      return false;
    }
  }

  /** The model under `name`, or null when Ollama has none; a damaged one throws a one-line UserError. */
  get(name: string | ModelName): OllamaModel | null {
    const n = toOllamaName(parsed(name));
    if (!this.has(name)) return null;
    const file = this.manifestFile(n);
    let text: string;
    try {
      text = readFileSync(this.inside(file), 'utf8');
    } catch (err) {
      throw new UserError(`Ollama model ${shortOllamaName(n)}: ${(err as Error).message}`);
    }
    return this.load(n, file, text);
  }

  /** Every model with a well-formed name; damaged manifests are listed too, for `get` to report. */
  names(): string[] {
    const out: string[] = [];
    for (const host of this.dirs('manifests'))
      for (const namespace of this.dirs('manifests', host))
        for (const model of this.dirs('manifests', host, namespace))
          for (const tag of this.dirs('manifests', host, namespace, model)) {
            const name = shortOllamaName({ host, namespace, model, tag });
            if (!nameProblem(name)) out.push(name);
          }
    return out;
  }

  private manifestFile(n: OllamaName): string {
    return join(this.root, 'manifests', n.host, n.namespace, n.model, n.tag);
  }

  private dirs(...parts: string[]): string[] {
    try {
      return readdirSync(join(this.root, ...parts)).sort();
    } catch {
      return [];
    }
  }

  /** `path` with links followed, refused unless it is still inside the store. */
  private inside(path: string): string {
    const real = realpathSync(path);
    if (!real.startsWith(realpathSync(this.root) + sep)) {
      throw new Error(`${path} leads outside Ollama's store (${this.root}); not read`);
    }
    return real;
  }

  private load(n: OllamaName, file: string, text: string): OllamaModel {
    const name = shortOllamaName(n);
    const fail = (what: string): never => {
      throw new UserError(`Ollama model ${name} (${file}): ${what}`);
    };
    const modifiedAt = statSync(file).mtime;
    try {
      const manifest = parseOllamaManifest(text);
      const blobs = this.blobs();
      return {
        name,
        manifest: manifestFromLayers(manifest, blobs, `${n.host}/${n.namespace}/${n.model}:${n.tag}`, modifiedAt),
        digest: createHash('sha256').update(text).digest('hex'),
        modifiedAt,
        size: manifest.layers.reduce((sum, l) => sum + l.size, 0),
      };
    } catch (err) {
      return fail((err as Error).message);
    }
  }

  private blobs(): BlobSource {
    const path = (layer: Layer): string => {
      const file = join(this.root, 'blobs', blobFileName(layer.digest));
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        throw new Error(`blob ${layer.digest} is missing (${file})`);
      }
      const real = this.inside(file);
      if (size !== layer.size) {
        throw new Error(`blob ${layer.digest} has ${size} bytes, the manifest says ${layer.size} (truncated?)`);
      }
      return real;
    };
    return {
      path,
      text: (layer) => {
        if (layer.size > MAX_TEXT_LAYER) {
          throw new Error(`${layer.mediaType} layer is ${layer.size} bytes (at most ${MAX_TEXT_LAYER})`);
        }
        const bytes = readFileSync(path(layer));
        const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        if (actual !== layer.digest) throw new Error(`blob ${layer.digest} does not match its digest (${actual})`);
        return bytes.toString('utf8');
      },
    };
  }
}
