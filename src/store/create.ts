import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TemplateError } from '../gotemplate/errors.ts';
import { OllamaTemplate } from '../gotemplate/ollama.ts';
import { hasGgufMagic } from '../loader/gguf/read.ts';
import { readLoraAdapter } from '../loader/lora-adapter.ts';
import { parseQuantization } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';
import { blobFolderId, blobFolderPath, FOLDER_FILE } from './blob-folder.ts';
import { findSnapshot } from './hf-cache.ts';
import { expandHome, hubCacheDir, modelsDir, ollamaModelsDir } from './locations.ts';
import type { AdapterSource, Manifest, ModelSource } from './manifest.ts';
import { ModelStore, type StoredModel } from './model-store.ts';
import type { Modelfile } from './modelfile.ts';
import { isHubRepoId, looksLikePath, nameProblem, parseModelName } from './names.ts';
import { blobFileName } from './ollama/manifest.ts';
import { OllamaStore } from './ollama/store.ts';
import { quantizedBlob } from './quantized-blob.ts';
import { checkModelPath, resolveModel, revisionOf, sourcePath } from './resolve.ts';

export interface CreateOptions {
  env?: Record<string, string | undefined>;
  /** The CLI may build FROM a folder or .gguf path; the HTTP API only from names. */
  allowPaths?: boolean;
  /** Where a relative FROM path starts (the Modelfile's folder). */
  baseDir?: string;
  /** Prefix for error messages, e.g. `Modelfile` (line numbers are added) or `/api/create`. */
  file?: string;
  /** A GGUF quantization (q4_k_m, q8_0, …): the base's weights are stored quantized, as a new blob. */
  quantize?: string;
  /**
   * The base is uploaded files (to /api/blobs; file name -> digest), not FROM's name: one GGUF file, or a safetensors
   * model folder's files.
   */
  fromFiles?: Record<string, string>;
  /** An uploaded PEFT LoRA adapter folder's files (file name -> digest): the API's ADAPTER. */
  adapterFiles?: Record<string, string>;
  /**
   * The base is this model folder or GGUF file, whatever FROM names (the server's own `--model` path, which FROM
   * names by its served name); other paths stay as `allowPaths` says.
   */
  fromPath?: string;
}

/**
 * Stores `name` as FROM plus the Modelfile's layers. FROM a stored model inherits its weights, template,
 * system prompt, messages and parameters (the new ones override); FROM an HF repo needs it in the HF cache.
 */
export async function createModel(name: string, mf: Modelfile, opts: CreateOptions = {}): Promise<StoredModel> {
  parseModelName(name);
  const env = opts.env ?? process.env;
  const store = new ModelStore(modelsDir(env));
  const file = opts.file ?? 'Modelfile';
  const at = (line: number | undefined) => (line ? `${file}:${line}` : file);
  const base = opts.fromFiles
    ? uploadedBase(store, opts.fromFiles, at(mf.fromLine))
    : opts.fromPath
      ? pathBase(opts.fromPath, `${at(mf.fromLine)}: FROM ${mf.from}`)
      : baseOf(mf.from, store, env, opts, at(mf.fromLine));
  const scheme = opts.quantize === undefined ? null : parseQuantization(opts.quantize, `${file}: quantize`);
  if (mf.template !== undefined) {
    try {
      new OllamaTemplate(mf.template);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      const line = mf.templateLine ? mf.templateLine + err.line - 1 : undefined;
      throw new UserError(`${at(line)}: TEMPLATE is not a valid Go template: ${err.detail}`);
    }
  }
  const adapter = adapterOf(mf, store, opts, base.inherited, at);
  if (adapter && scheme) {
    throw new UserError(
      `${at(mf.adapterLine)}: ADAPTER with quantize: an adapter merges only into 16- or 32-bit weights (serve the model with --quantization instead)`,
    );
  }
  // New parameters replace inherited ones of the same name (stop lists included).
  const parameters = { ...(base.inherited?.parameters ?? {}), ...mf.parameters };
  const manifest: Manifest = {
    schemaVersion: 1,
    source: scheme ? await quantizedBlob(store.root, sourcePath(base.source, mf.from, env).path, scheme) : base.source,
    from: mf.from,
    parameters,
    system: mf.system ?? base.inherited?.system,
    template: mf.template ?? base.inherited?.template,
    messages: mf.messages.length ? mf.messages : (base.inherited?.messages ?? []),
    license: mf.license.length ? mf.license : (base.inherited?.license ?? []),
    adapter,
    createdAt: new Date().toISOString(),
  };
  return store.put(name, manifest);
}

/**
 * The new model's LoRA adapter: uploaded files, or the Modelfile's ADAPTER folder (the CLI's; the API takes uploads),
 * else the base model's. Read once here, so an adapter pagoda cannot merge is refused at create.
 */
function adapterOf(
  mf: Modelfile,
  store: ModelStore,
  opts: CreateOptions,
  inherited: Manifest | null,
  at: (line: number | undefined) => string,
): AdapterSource | undefined {
  let adapter: AdapterSource;
  let dir: string;
  if (opts.adapterFiles) {
    const where = `${at(undefined)}: adapters`;
    checkPlainNames(opts.adapterFiles, where);
    for (const [file, digest] of Object.entries(opts.adapterFiles)) {
      keepUpload(store, digest, storedBlob(store, digest, `${where}: ${file}`));
    }
    adapter = { kind: 'blob-folder', files: opts.adapterFiles };
    dir = blobFolderPath(store.root, opts.adapterFiles);
  } else if (mf.adapter !== undefined) {
    const where = `${at(mf.adapterLine)}: ADAPTER ${mf.adapter}`;
    if (!opts.allowPaths) throw new UserError(`${where}: paths are not accepted here, upload the adapter's files`);
    dir = resolve(opts.baseDir ?? '.', expandHome(mf.adapter));
    if (existsSync(dir) && statSync(dir).isFile() && hasGgufMagic(dir)) {
      throw new UserError(`${where}: a GGUF LoRA adapter is not supported; give the PEFT adapter folder`);
    }
    adapter = { kind: 'hf-folder', path: dir };
  } else return inherited?.adapter;
  readLoraAdapter(dir).close();
  return adapter;
}

/**
 * Uploaded files as a model's base: one GGUF file (a blob), or a safetensors folder's files (config.json and
 * .safetensors weights at least: a folder of blobs). Refused in one line when a file is missing, or the files are
 * neither. Uploads move into `blobs/` once they make a model.
 */
function uploadedBase(
  store: ModelStore,
  files: Record<string, string>,
  where: string,
): { source: ModelSource; inherited: null } {
  const found = Object.entries(files).map(([name, digest]) => ({
    name,
    digest,
    path: storedBlob(store, digest, where),
  }));
  const names = found.map((f) => f.name).join(', ');
  if (found.length === 1 && !/\.(safetensors|json)$/i.test(found[0]!.name)) {
    // Ollama tells a GGUF by its magic bytes, not its name.
    const [{ digest, path }] = found as [(typeof found)[number]];
    if (!hasGgufMagic(path)) throw new UserError(`${where}: blob ${digest} is not a GGUF file`);
    keepUpload(store, digest, path);
    return { source: { kind: 'blob', digest }, inherited: null };
  }
  checkPlainNames(files, `${where}: files`);
  if (!found.some((f) => f.name === 'config.json') || !found.some((f) => f.name.endsWith('.safetensors'))) {
    throw new UserError(
      `${where}: files: one GGUF file, or a model folder's config.json and .safetensors weights (got ${names.slice(0, 200)})`,
    );
  }
  for (const f of found) keepUpload(store, f.digest, f.path);
  const source: ModelSource = { kind: 'blob-folder', files };
  checkModelPath(blobFolderPath(store.root, files), `${where}: files`);
  return { source, inherited: null };
}

/** Uploaded files make a folder only under plain names (FOLDER_FILE); one line naming the first that is not. */
function checkPlainNames(files: Record<string, string>, where: string): void {
  const strange = Object.keys(files).find((f) => !FOLDER_FILE.test(f));
  if (strange) throw new UserError(`${where}: ${JSON.stringify(strange.slice(0, 100))} is not a plain file name`);
}

/** Where the store holds a blob (`blobs/`, or `uploads/` until a model is made of it); one line when it has none. */
function storedBlob(store: ModelStore, digest: string, where: string): string {
  const path = join(store.root, 'blobs', blobFileName(digest));
  const upload = join(store.root, 'uploads', blobFileName(digest));
  const found = existsSync(path) ? path : existsSync(upload) ? upload : null;
  if (!found) throw new UserError(`${where}: blob ${digest} is not in the store (upload it first)`);
  return found;
}

/** An upload a model is made of moves into `blobs/` (which pruning manages; `uploads/` waits apart). */
function keepUpload(store: ModelStore, digest: string, found: string): void {
  const path = join(store.root, 'blobs', blobFileName(digest));
  if (found === path) return;
  mkdirSync(dirname(path), { recursive: true });
  renameSync(found, path);
}

function baseOf(
  from: string,
  store: ModelStore,
  env: Record<string, string | undefined>,
  opts: CreateOptions,
  where: string,
): { source: ModelSource; inherited: Manifest | null } {
  if (looksLikePath(from)) {
    if (!opts.allowPaths) {
      throw new UserError(`${where}: FROM ${JSON.stringify(from)}: paths are not accepted here, give a model name`);
    }
    return pathBase(resolve(opts.baseDir ?? '.', expandHome(from)), `${where}: FROM ${from}`);
  }
  const problem = nameProblem(from);
  if (problem) throw new UserError(`${where}: FROM ${JSON.stringify(from)}: invalid model name: ${problem}`);
  const parent = store.get(from) ?? new OllamaStore(ollamaModelsDir(env)).get(from);
  if (parent) return { source: parent.manifest.source, inherited: parent.manifest };
  const name = parseModelName(from);
  if (isHubRepoId(name.repo)) {
    const revision = revisionOf(name.tag);
    if (findSnapshot(hubCacheDir(env), name.repo, revision)) {
      return { source: { kind: 'hf-repo', repo: name.repo, revision }, inherited: null };
    }
    throw new UserError(`${where}: FROM ${from}: not in the Hugging Face cache; run \`pagoda pull ${from}\` first`);
  }
  throw new UserError(
    `${where}: FROM ${from}: no such model in the store (${store.root}) or Ollama's store (${ollamaModelsDir(env)})`,
  );
}

/** A model folder or GGUF file as a base, checked to be one. */
function pathBase(path: string, where: string): { source: ModelSource; inherited: null } {
  const { format } = checkModelPath(path, where);
  return { source: format === 'gguf' ? { kind: 'gguf', path } : { kind: 'hf-folder', path }, inherited: null };
}

/**
 * `cp`: a stored model's manifest under a new name; Ollama's model as a manifest over its blob (copying no weights);
 * or a new manifest over a Hugging Face cache repo.
 */
export function copyModel(source: string, destination: string, env: Record<string, string | undefined> = process.env) {
  parseModelName(destination);
  const store = new ModelStore(modelsDir(env));
  if (store.get(source)) return store.copy(source, destination);
  const resolved = resolveModel(source, { env });
  if (resolved.origin === 'ollama') {
    return store.put(destination, { ...resolved.manifest!, createdAt: new Date().toISOString() });
  }
  const name = parseModelName(source);
  return store.put(destination, {
    schemaVersion: 1,
    source: { kind: 'hf-repo', repo: name.repo, revision: revisionOf(name.tag) },
    from: source,
    parameters: {},
    messages: [],
    license: [],
    createdAt: new Date().toISOString(),
  });
}

/** `rm`: removes a stored name. Ollama's store and Hugging Face cache repos belong to other tools: left alone. */
export function removeModel(name: string, env: Record<string, string | undefined> = process.env): void {
  const store = new ModelStore(modelsDir(env));
  if (store.remove(name)) {
    pruneBlobs(store);
    return;
  }
  const parsed = parseModelName(name);
  if (new OllamaStore(ollamaModelsDir(env)).has(parsed)) {
    throw new UserError(
      `${name} is in Ollama's store (${ollamaModelsDir(env)}), which pagoda only reads; remove it with \`ollama rm ${name}\``,
    );
  }
  if (isHubRepoId(parsed.repo) && findSnapshot(hubCacheDir(env), parsed.repo, revisionOf(parsed.tag))) {
    throw new UserError(
      `${name} is in the Hugging Face cache (${hubCacheDir(env)}), which pagoda shares with other tools; delete it there (huggingface-cli delete-cache)`,
    );
  }
  throw new UserError(`model "${name}" not found in the store (${store.root})`);
}

/**
 * Deletes the store's blobs that no manifest names any more (a removed model's weights; the text layers, whose
 * contents live in the manifests) and the blob folders no manifest names. Partial downloads (`.incomplete`) are kept
 * for a later pull to resume.
 */
function pruneBlobs(store: ModelStore): void {
  const sources = store.list().flatMap((m) => [m.manifest.source, ...(m.manifest.adapter ? [m.manifest.adapter] : [])]);
  const used = new Set(
    sources
      .flatMap((s) => (s.kind === 'blob' ? [s.digest] : s.kind === 'blob-folder' ? Object.values(s.files) : []))
      .map(blobFileName),
  );
  const folders = new Set(sources.flatMap((s) => (s.kind === 'blob-folder' ? [blobFolderId(s.files)] : [])));
  for (const file of listing(join(store.root, 'blobs'))) {
    if (/^sha256-[0-9a-f]{64}$/.test(file) && !used.has(file)) rmSync(join(store.root, 'blobs', file));
  }
  for (const folder of listing(join(store.root, 'folders'))) {
    if (!folders.has(folder)) rmSync(join(store.root, 'folders', folder), { recursive: true, force: true });
  }
}

const listing = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
