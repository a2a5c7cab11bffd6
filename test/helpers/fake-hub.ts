import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.ts';
import { sendRangedBody } from './ranged-body.ts';

/** A repo served by the fake Hub. Files of at least `lfsThreshold` bytes are served like LFS files. */
export interface FakeRepo {
  commit: string;
  files: Record<string, Buffer>;
  /** Bearer token required (401 without it), like a private or gated repo. */
  token?: string;
}

export interface FakeHubRequest {
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
}

/**
 * An HTTP server imitating the parts of the Hugging Face Hub that `pull` uses: the model info API
 * (`/api/models/{repo}`), HEAD/GET on `/{repo}/resolve/{rev}/{file}` with the Hub's ETag / X-Linked-Etag /
 * X-Linked-Size / X-Repo-Commit headers, LFS files redirected to a CDN path, and Range requests.
 * Faults can be injected: cut a transfer after N bytes, or serve corrupted bytes.
 */
export class FakeHub extends LoopbackServer {
  readonly repos = new Map<string, FakeRepo>();
  readonly requests: FakeHubRequest[] = [];
  /** file path -> bytes after which the next GET of that file drops the connection (consumed once per entry). */
  readonly cutAfter = new Map<string, number[]>();
  /** file paths whose content is served with one byte flipped. */
  readonly corrupt = new Set<string>();
  lfsThreshold = 1024;

  static etagOf(content: Buffer, lfs: boolean): string {
    if (lfs) return createHash('sha256').update(content).digest('hex');
    return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({
      method: req.method ?? '',
      url: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const api = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(url.pathname);
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/(.+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (api) this.info(req, res, api[1]!);
    else if (cdn) this.content(req, res, cdn[1]!, decodeURIComponent(cdn[2]!));
    else if (resolve) this.resolve(req, res, resolve[1]!, decodeURIComponent(resolve[3]!));
    else res.writeHead(404).end('{"error":"not found"}');
  }

  private repo(req: IncomingMessage, res: ServerResponse, id: string): FakeRepo | null {
    const repo = this.repos.get(id);
    if (!repo) {
      res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end(JSON.stringify({ error: 'Repository not found' }));
      return null;
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      res.writeHead(401).end(JSON.stringify({ error: 'Invalid credentials in Authorization header' }));
      return null;
    }
    return repo;
  }

  private info(req: IncomingMessage, res: ServerResponse, id: string): void {
    const repo = this.repo(req, res, id);
    if (!repo) return;
    const siblings = Object.keys(repo.files).map((rfilename) => ({ rfilename }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, sha: repo.commit, siblings }));
  }

  private resolve(req: IncomingMessage, res: ServerResponse, id: string, file: string): void {
    const repo = this.repo(req, res, id);
    if (!repo) return;
    const content = repo.files[file];
    if (!content) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end(JSON.stringify({ error: 'Entry not found' }));
      return;
    }
    const lfs = content.length >= this.lfsThreshold;
    const etag = FakeHub.etagOf(content, lfs);
    if (lfs) {
      // The Hub answers LFS files with a redirect to its CDN and puts the real metadata in X-Linked-*.
      res
        .writeHead(302, {
          location: `${this.endpoint}/cdn/${id}/${encodeURIComponent(file)}`,
          'x-repo-commit': repo.commit,
          'x-linked-etag': `"${etag}"`,
          'x-linked-size': String(content.length),
          etag: `"${FakeHub.etagOf(Buffer.from('pointer'), false)}"`,
        })
        .end();
      return;
    }
    res.setHeader('x-repo-commit', repo.commit);
    res.setHeader('etag', `"${etag}"`);
    this.content(req, res, id, file);
  }

  private content(req: IncomingMessage, res: ServerResponse, id: string, file: string): void {
    const content = this.repos.get(id)?.files[file];
    if (!content) {
      res.writeHead(404).end();
      return;
    }
    sendRangedBody(req, res, content, { corrupt: this.corrupt.has(file), cutAfter: this.cutAfter.get(file)?.shift() });
  }
}
