import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopbackServer } from './loopback-server.ts';
import { type FakeLayer, ollamaManifest, sha256 } from './ollama-store.ts';
import { sendRangedBody } from './ranged-body.ts';

/**
 * An HTTP server imitating an Ollama-compatible registry: GET /v2/<ns>/<model>/manifests/<tag>, and blobs by
 * digest redirected to a CDN path that honours Range, as registry.ollama.ai does. Faults can be injected: cut a
 * blob's transfer after N bytes (once per entry), or serve it with one byte flipped.
 */
export class FakeRegistry extends LoopbackServer {
  /** `<ns>/<model>:<tag>` -> its layers (or a manifest body as given). */
  readonly models = new Map<string, FakeLayer[] | string>();
  readonly blobs = new Map<string, Buffer>();
  readonly requests: { url: string; range: string | undefined }[] = [];
  readonly cutAfter = new Map<string, number[]>();
  readonly corrupt = new Set<string>();

  /** Serves a model and its blobs; returns the manifest. */
  add(name: string, layers: FakeLayer[]) {
    this.models.set(name, layers);
    for (const l of layers) this.blobs.set(sha256(l.content), Buffer.from(l.content));
    return ollamaManifest(layers);
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    this.requests.push({ url: path, range: req.headers.range });
    const manifest = /^\/v2\/([^/]+\/[^/]+)\/manifests\/([^/]+)$/.exec(path);
    const blob = /^\/v2\/[^/]+\/[^/]+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    const cdn = /^\/cdn\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (manifest) {
      const model = this.models.get(`${manifest[1]}:${manifest[2]}`);
      if (model === undefined) {
        res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        return;
      }
      const body = typeof model === 'string' ? model : JSON.stringify(ollamaManifest(model));
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' }).end(body);
    } else if (blob && this.blobs.has(blob[1]!)) {
      res.writeHead(307, { location: `${this.endpoint}/cdn/${blob[1]}` }).end();
    } else if (cdn && this.blobs.has(cdn[1]!)) {
      this.content(req, res, cdn[1]!);
    } else {
      res.writeHead(404).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    }
  }

  private content(req: IncomingMessage, res: ServerResponse, digest: string): void {
    sendRangedBody(req, res, this.blobs.get(digest)!, {
      corrupt: this.corrupt.has(digest),
      cutAfter: this.cutAfter.get(digest)?.shift(),
    });
  }
}
