import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { isCommitHash, repoCacheDir, snapshotDir, writeRef } from './hf-cache.ts';
import { fetchOne, hubClientFromEnv, type PullOptions } from './hub.ts';
import { getRepoInfo } from './hub-api.ts';
import { hubCacheDir } from './locations.ts';
import { DEFAULT_TAG, parseModelName } from './names.ts';

/** Ollama's spelling of a GGUF file in a Hub repo: `hf.co/org/repo[:quant]`. */
export const HF_HOST = 'hf.co';
/** The quantization `latest` stands for, as in Ollama. */
const DEFAULT_QUANT = 'Q4_K_M';
/** `…-Q4_K_M.gguf`, `….IQ3_XS.gguf`, `…-f16.gguf`: the quantization a file name ends with. */
const QUANT_SUFFIX = /[-._]((?:I?Q\d[A-Z0-9_]*)|BF16|F16|F32)\.gguf$/i;
/** Shards of a split GGUF (`-00001-of-00003.gguf`) and vision projectors are not one model file. */
const SPLIT = /-\d{5}-of-\d{5}\.gguf$/;
const NOT_A_MODEL = new RegExp(`${SPLIT.source}|mmproj`, 'i');

export function isHfGgufName(repo: string): boolean {
  return repo.startsWith(`${HF_HOST}/`) && repo.split('/').length === 3;
}

/** The quantization a GGUF file name ends with, upper-cased, or null. */
export function quantOf(file: string): string | null {
  return QUANT_SUFFIX.exec(file)?.[1]?.toUpperCase() ?? null;
}

/**
 * The one GGUF file of `files` in quantization `tag` (case-insensitive; `latest` = Q4_K_M), or a one-line error
 * listing the quantizations there are.
 */
export function pickGguf(files: string[], tag: string, shown: string): string {
  const want = (tag === DEFAULT_TAG ? DEFAULT_QUANT : tag).toUpperCase();
  const models = files.filter((f) => f.endsWith('.gguf') && !NOT_A_MODEL.test(f));
  const found = models.filter((f) => quantOf(f) === want);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new UserError(`${shown}: more than one ${want} GGUF file (${found.join(', ')})`);
  if (files.some((f) => SPLIT.test(f) && quantOf(f.replace(SPLIT, '.gguf')) === want)) {
    throw new UserError(`${shown}: the ${want} GGUF is split into parts, which pagoda cannot load`);
  }
  const quants = [...new Set(models.map(quantOf).filter((q) => q !== null))].sort();
  throw new UserError(
    quants.length
      ? `${shown}: no ${want} GGUF file; the repo has ${quants.join(', ')}`
      : `${shown}: the repo has no GGUF model file`,
  );
}

/** A GGUF file in the Hugging Face cache, named as Ollama names it. */
export interface CachedGguf {
  /** `hf.co/org/repo:QUANT`. */
  name: string;
  path: string;
  commit: string;
}

/** The files of a cached repo's `main` snapshot, or null when it has none. */
function mainSnapshot(cacheDir: string, repo: string): { dir: string; commit: string; files: string[] } | null {
  try {
    const commit = readFileSync(join(repoCacheDir(cacheDir, repo), 'refs', 'main'), 'utf8').trim();
    if (!isCommitHash(commit)) return null;
    const dir = snapshotDir(cacheDir, repo, commit);
    return { dir, commit, files: readdirSync(dir) };
  } catch {
    return null;
  }
}

/** The cached GGUF file for `hf.co/org/repo:quant` (the repo's `main` snapshot), or null. */
export function findCachedGguf(cacheDir: string, repo: string, tag: string): { path: string; commit: string } | null {
  const snap = mainSnapshot(cacheDir, repo);
  if (!snap) return null;
  const { dir, commit, files } = snap;
  try {
    const file = pickGguf(files, tag, repo);
    return statSync(join(dir, file)).isFile() ? { path: join(dir, file), commit } : null;
  } catch {
    return null;
  }
}

/** Every single-file GGUF model in the cache's `main` snapshots, for `pagoda list`. */
export function listCachedGgufs(cacheDir: string): CachedGguf[] {
  let entries: string[];
  try {
    entries = readdirSync(cacheDir).sort();
  } catch {
    return [];
  }
  const out: CachedGguf[] = [];
  for (const entry of entries) {
    const parts = entry.split('--');
    if (parts[0] !== 'models' || parts.length !== 3) continue;
    const repo = `${parts[1]}/${parts[2]}`;
    const snap = mainSnapshot(cacheDir, repo);
    for (const file of snap?.files.sort() ?? []) {
      const quant = quantOf(file);
      if (!quant || NOT_A_MODEL.test(file)) continue;
      out.push({ name: `${HF_HOST}/${repo}:${quant}`, path: join(snap!.dir, file), commit: snap!.commit });
    }
  }
  return out;
}

/**
 * `pagoda pull hf.co/org/repo[:quant]`: the GGUF file of that quantization from the Hub repo's main branch into the
 * Hugging Face cache (resumed, size and sha256 checked, as every Hub pull); returns its path.
 */
export async function pullGgufFromHub(ref: string, opts: PullOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const name = parseModelName(ref);
  if (!isHfGgufName(name.repo)) throw new UserError(`cannot pull "${ref}": expected hf.co/org/repo[:quantization]`);
  const repo = name.repo.slice(HF_HOST.length + 1);
  const hub = hubClientFromEnv(env, opts.fetch);
  const cacheDir = hubCacheDir(env);
  const emit = opts.onProgress ?? (() => {});
  emit({ status: 'pulling manifest' });
  const info = await getRepoInfo(hub, repo, 'main');
  const file = pickGguf(info.files, name.tag, ref);
  const path = await fetchOne(hub, cacheDir, repo, info.commit, file, emit, opts);
  emit({ status: 'verifying sha256 digest' });
  writeRef(cacheDir, repo, 'main', info.commit);
  emit({ status: 'success' });
  return path;
}
