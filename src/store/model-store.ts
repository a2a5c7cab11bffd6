import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../util/errors.ts';
import { type Manifest, ManifestSchema } from './manifest.ts';
import { formatModelName, type ModelName, parseModelName } from './names.ts';

export interface StoredModel {
  name: string;
  manifest: Manifest;
  /** sha256 of the manifest file (Ollama shows its first 12 hex digits as the ID). */
  digest: string;
  modifiedAt: Date;
}

/** Named models on disk: `<root>/manifests/<namespace>/<name>/<tag>.json`, one JSON manifest per name:tag. */
export class ModelStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  get(name: string | ModelName): StoredModel | null {
    const parsed = typeof name === 'string' ? parseModelName(name) : name;
    const file = this.manifestPath(parsed);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    return this.load(formatModelName(parsed), file, text);
  }

  /** Writes atomically (temp file + rename) so a reader never sees half a manifest. */
  put(name: string, manifest: Manifest): StoredModel {
    const parsed = parseModelName(name);
    const file = this.manifestPath(parsed);
    mkdirSync(dirname(file), { recursive: true });
    const text = `${JSON.stringify(ManifestSchema.parse(manifest), null, 2)}\n`;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
    return this.load(formatModelName(parsed), file, text);
  }

  copy(source: string, destination: string): StoredModel {
    const from = this.get(source);
    if (!from) throw new UserError(`model "${source}" is not in the store (${this.root})`);
    return this.put(destination, { ...from.manifest, createdAt: new Date().toISOString() });
  }

  /** Removes a name; returns false when it was not there. Empty namespace folders go too. */
  remove(name: string): boolean {
    const file = this.manifestPath(parseModelName(name));
    try {
      rmSync(file);
    } catch {
      return false;
    }
    for (let dir = dirname(file); dir !== this.manifestsDir(); dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        break;
      }
    }
    return true;
  }

  list(): StoredModel[] {
    const out: StoredModel[] = [];
    const walk = (dir: string): void => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      for (const entry of entries.sort()) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (entry.endsWith('.json')) {
          const rel = relative(this.manifestsDir(), path).split(sep);
          const tag = rel.pop()!.slice(0, -'.json'.length);
          const name = `${rel.join('/')}:${tag}`;
          try {
            out.push(this.load(name, path, readFileSync(path, 'utf8')));
          } catch {
            // A damaged manifest must not hide the others; `show` on its name reports the problem.
          }
        }
      }
    };
    walk(this.manifestsDir());
    return out;
  }

  private manifestsDir(): string {
    return join(this.root, 'manifests');
  }

  private manifestPath(name: ModelName): string {
    const file = resolve(this.manifestsDir(), ...name.repo.split('/'), `${name.tag}.json`);
    // Names are validated already; this guards the invariant that no name leaves the store.
    if (!file.startsWith(this.manifestsDir() + sep))
      throw new UserError(`invalid model name "${formatModelName(name)}"`);
    return file;
  }

  private load(name: string, file: string, text: string): StoredModel {
    let manifest: Manifest;
    try {
      manifest = ManifestSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new UserError(`${file}: not a valid pagoda manifest (${(err as Error).message.split('\n')[0]})`);
    }
    return {
      name,
      manifest,
      digest: createHash('sha256').update(text).digest('hex'),
      modifiedAt: statSync(file).mtime,
    };
  }
}
