import { UserError } from '../util/errors.ts';

/**
 * A model name as users write it: `name:tag`, `namespace/name:tag` (an HF repo id is `org/repo`) or, as Ollama
 * spells names from another registry, `host.domain/namespace/name:tag`.
 */
export interface ModelName {
  /** `name` or `namespace/name`. */
  repo: string;
  /** `latest` when not given. */
  tag: string;
}

export const DEFAULT_TAG = 'latest';
/** Longest accepted name including the tag: enough for every Hub repo id, short enough for any file system. */
export const MAX_NAME_LENGTH = 200;
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Why `raw` cannot be a model name, or null when it can. Names become file paths in the store, so anything
 * that could leave the store folder (`..`, absolute paths, backslashes, NUL) or overflow a path is refused.
 */
export function nameProblem(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length === 0) return 'is empty';
  if (raw.includes('\0')) return 'contains a NUL byte';
  if (raw.length > MAX_NAME_LENGTH) return `is ${raw.length} characters long (at most ${MAX_NAME_LENGTH})`;
  if (raw.includes('\\')) return 'contains a backslash';
  if (raw.startsWith('/') || /^[A-Za-z]:\//.test(raw) || raw.startsWith('~')) return 'is an absolute path';
  if (raw.split(/[/:]/).some((s) => s === '..' || s === '.')) return 'contains a "." or ".." segment';
  const colon = raw.lastIndexOf(':');
  const repo = colon >= 0 ? raw.slice(0, colon) : raw;
  const tag = colon >= 0 ? raw.slice(colon + 1) : DEFAULT_TAG;
  const segments = repo.split('/');
  if (segments.length > 3 || (segments.length === 3 && !segments[0]!.includes('.'))) {
    return 'has more than one "/" (expected name, namespace/name or registry.host/namespace/name)';
  }
  for (const s of segments) {
    if (s === '') return 'has an empty part';
    if (!SEGMENT.test(s)) return `has an invalid part "${s}" (letters, digits, "_", "-", "." only)`;
  }
  if (!TAG.test(tag)) return `has an invalid tag "${tag}" (letters, digits, "_", "-", "." only)`;
  return null;
}

/** Parses and validates a model name; throws a one-line UserError naming the value otherwise. */
export function parseModelName(raw: string): ModelName {
  const problem = nameProblem(raw);
  if (problem) throw new UserError(`invalid model name ${JSON.stringify(raw)}: ${problem}`);
  const colon = raw.lastIndexOf(':');
  return colon >= 0 ? { repo: raw.slice(0, colon), tag: raw.slice(colon + 1) } : { repo: raw, tag: DEFAULT_TAG };
}

export function formatModelName(name: ModelName): string {
  return `${name.repo}:${name.tag}`;
}

/** A Hugging Face repo id is exactly `org/repo` (the Hub also forbids `--` and `..` inside parts). */
export function isHubRepoId(repo: string): boolean {
  const parts = repo.split('/');
  return parts.length === 2 && parts.every((p) => SEGMENT.test(p) && !p.includes('--') && !p.includes('..'));
}

/**
 * True when the user plainly wrote a path rather than a name: `/abs`, `./rel`, `../rel`, `~/home`.
 * Only local commands accept paths; names from the network never reach the file system as paths.
 */
export function looksLikePath(ref: string): boolean {
  return /^(\/|\.\.?\/|~\/|\.\.?$)/.test(ref) || /^[A-Za-z]:[\\/]/.test(ref);
}
