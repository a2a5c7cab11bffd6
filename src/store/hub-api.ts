import { UserError } from '../util/errors.ts';

/** How to reach the Hugging Face Hub (an imitation of it in tests), or another server blobs are downloaded from. */
export interface HubClient {
  endpoint: string;
  token?: string;
  fetch: typeof fetch;
  /** What the server is called in error messages (default: the Hugging Face Hub). */
  label?: string;
}

export interface RepoInfo {
  /** The commit the revision points at. */
  commit: string;
  /** Every file path in the repo (`siblings[].rfilename`). */
  files: string[];
}

export interface FileMeta {
  /** The Hub's ETag: sha256 of the content for LFS files, the git blob sha1 for the others. */
  etag: string;
  size: number;
  commit: string;
}

export function authHeaders(hub: HubClient): Record<string, string> {
  return hub.token ? { authorization: `Bearer ${hub.token}` } : {};
}

export function resolveUrl(hub: HubClient, repo: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${hub.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** GET /api/models/{repo}[/revision/{rev}]: the commit and the file list. */
export async function getRepoInfo(hub: HubClient, repo: string, revision: string): Promise<RepoInfo> {
  const suffix = revision === 'main' ? '' : `/revision/${encodeURIComponent(revision)}`;
  const res = await request(hub, `${hub.endpoint}/api/models/${repo}${suffix}`, { method: 'GET' }, repo);
  if (!res.ok) throw hubError(hub, res.status, repo, `revision ${revision}`);
  const body = (await res.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof body.sha !== 'string' || !Array.isArray(body.siblings)) {
    throw new UserError(`${hub.endpoint}/api/models/${repo}: unexpected answer (no sha or siblings)`);
  }
  return { commit: body.sha, files: body.siblings.map((s) => String(s.rfilename)) };
}

/**
 * HEAD on the resolve URL without following a redirect to the CDN: the Hub puts the LFS metadata
 * (X-Linked-Etag, X-Linked-Size) on its own answer; relative redirects (renamed repos) are followed.
 */
export async function getFileMeta(hub: HubClient, repo: string, revision: string, file: string): Promise<FileMeta> {
  let url = resolveUrl(hub, repo, revision, file);
  for (let hops = 0; hops < 5; hops++) {
    const res = await request(hub, url, { method: 'HEAD', redirect: 'manual' }, repo);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location?.startsWith('/')) {
      url = new URL(location, url).toString();
      continue;
    }
    if (res.status >= 400) throw hubError(hub, res.status, repo, file);
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (!etag || !Number.isFinite(size)) throw new UserError(`${url}: the Hub sent no ETag or size for ${file}`);
    return { etag, size, commit: res.headers.get('x-repo-commit') ?? revision };
  }
  throw new UserError(`${resolveUrl(hub, repo, revision, file)}: too many redirects`);
}

export function normalizeEtag(raw: string | null): string {
  return (raw ?? '').replace(/^W\//, '').replace(/"/g, '');
}

/** fetch with the token, turning network failures into one clear line. */
export async function request(hub: HubClient, url: string, init: RequestInit, repo: string): Promise<Response> {
  try {
    return await hub.fetch(url, { ...init, headers: { ...authHeaders(hub), ...(init.headers ?? {}) } });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new UserError(
      `cannot reach ${hub.label ?? 'the Hugging Face Hub'} at ${hub.endpoint} for ${repo}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
}

/** The Hub's refusals as one line each, saying what to do about them. */
export function hubError(hub: HubClient, status: number, repo: string, what: string): UserError {
  if (status === 401) {
    return new UserError(
      hub.token
        ? `the Hugging Face Hub refused HF_TOKEN for ${repo} (401 Unauthorized): check that the token is valid and can read this repo`
        : `the Hugging Face Hub answered 401 Unauthorized for ${repo}: it is private, gated or does not exist; set HF_TOKEN to a token that can read it`,
    );
  }
  if (status === 403) {
    return new UserError(
      `access to ${repo} is restricted (403 Forbidden): accept its terms at ${hub.endpoint}/${repo} and set HF_TOKEN to a token with access`,
    );
  }
  if (status === 404)
    return new UserError(`${repo}: ${what} not found on the Hugging Face Hub at ${hub.endpoint} (404)`);
  return new UserError(`the Hugging Face Hub answered ${status} for ${repo} (${what})`);
}
