/** A small in-process OCI registry (node:http) with fault injection, for registry client and service tests. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BuiltBlob, BuiltImage } from '../../e2e/harness/oci-image';

export interface FakeRegistryOptions {
  auth?: 'none' | 'basic' | 'bearer';
  username?: string;
  password?: string;
  /** OAuth2 refresh token the token endpoint accepts in a POST (grant_type=refresh_token). */
  refreshToken?: string;
}

export class FakeRegistry {
  readonly manifests = new Map<string, { mediaType: string; data: Buffer }>();
  readonly blobs = new Map<string, Buffer>();
  /** Count of GET requests per path (after auth). */
  readonly hits = new Map<string, number>();
  tokenRequests = 0;
  /** Per-blob faults: 'truncate' closes after half the bytes once; 'corrupt' serves wrong bytes; 'redirect' sends a 307 to /storage. */
  faults = new Map<string, 'truncate-once' | 'corrupt' | 'redirect' | 'truncate-always' | 'stall-once' | 'hold'>();
  /** Form bodies of POSTs to the token endpoint. */
  tokenPosts: URLSearchParams[] = [];
  /** Requests parked by the 'hold' fault, answered by releaseHeld(). */
  private held: (() => void)[] = [];
  /** Bytes of each blob sent before a 'stall-once' stops sending (default half). */
  stallAfter = new Map<string, number>();
  /** Blobs for which Range headers are ignored (full 200 answers). */
  ignoreRange = new Set<string>();
  /** Range headers seen. */
  ranges: string[] = [];
  /** Paths answered with this status (e.g. 500) the first n times. */
  failFirst = new Map<string, { status: number; times: number }>();
  private server!: Server;
  port = 0;

  constructor(readonly opts: FakeRegistryOptions = {}) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  addBlob(b: BuiltBlob): void {
    this.blobs.set(b.digest, b.data);
  }

  addManifest(repo: string, ref: string, m: { mediaType: string; data: Buffer; digest?: string }): void {
    this.manifests.set(`${repo}:${ref}`, { mediaType: m.mediaType, data: m.data });
    if (m.digest) this.manifests.set(`${repo}:${m.digest}`, { mediaType: m.mediaType, data: m.data });
  }

  addImage(repo: string, tag: string, img: BuiltImage): void {
    this.addBlob(img.config);
    for (const l of img.layers) this.addBlob(l);
    this.addManifest(repo, tag, img.manifest);
  }

  /** Answers every request parked by a 'hold' fault (the fault is cleared first). */
  releaseHeld(): void {
    for (const [k, v] of this.faults) if (v === 'hold') this.faults.delete(k);
    for (const h of this.held.splice(0)) h();
  }

  get heldCount(): number {
    return this.held.length;
  }

  count(p: string): number {
    return this.hits.get(p) ?? 0;
  }

  private authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const mode = this.opts.auth ?? 'none';
    if (mode === 'none') return true;
    const h = req.headers.authorization ?? '';
    if (mode === 'basic') {
      const want = 'Basic ' + Buffer.from(`${this.opts.username}:${this.opts.password}`).toString('base64');
      if (h === want) return true;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return false;
    }
    if (h === 'Bearer good-token') return true;
    res.writeHead(401, {
      'www-authenticate': `Bearer realm="http://${this.host}/token",service="fake",scope="repository:x:pull"`,
      'content-type': 'application/json',
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token required' }] }));
    return false;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${this.host}`);
    if (url.pathname === '/token' && req.method === 'POST') {
      this.tokenRequests++;
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        this.tokenPosts.push(form);
        const ok = this.opts.refreshToken && form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === this.opts.refreshToken;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { access_token: 'good-token', expires_in: 300 } : { error: 'invalid_grant' }));
      });
      return;
    }
    if (url.pathname === '/token') {
      this.tokenRequests++;
      const want = 'Basic ' + Buffer.from(`${this.opts.username}:${this.opts.password}`).toString('base64');
      if (this.opts.username && req.headers.authorization !== want) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'good-token', expires_in: 300 }));
      return;
    }
    if (url.pathname.startsWith('/storage/')) {
      // Redirect target: no auth (pre-signed), must not receive the registry's Authorization header.
      if (req.headers.authorization) {
        res.writeHead(400);
        res.end('authorization leaked to storage');
        return;
      }
      const data = this.blobs.get(url.pathname.slice('/storage/'.length));
      res.writeHead(data ? 200 : 404, { 'content-length': String(data?.length ?? 0) });
      res.end(data);
      return;
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (!this.authorized(req, res)) return;
      res.writeHead(200);
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404);
      res.end();
      return;
    }
    if (!this.authorized(req, res)) return;
    const ff = this.failFirst.get(url.pathname);
    if (ff && ff.times > 0) {
      ff.times--;
      res.writeHead(ff.status);
      res.end();
      return;
    }
    this.hits.set(url.pathname, this.count(url.pathname) + 1);
    const [, repo, kind, ref] = m;
    if (kind === 'manifests') {
      const man = this.manifests.get(`${repo}:${ref}`);
      if (!man) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: `manifest unknown: ${repo}:${ref}` }] }));
        return;
      }
      res.writeHead(200, { 'content-type': man.mediaType, 'content-length': String(man.data.length) });
      res.end(req.method === 'HEAD' ? undefined : man.data);
      return;
    }
    const data = this.blobs.get(ref);
    if (!data) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
      return;
    }
    const fault = this.faults.get(ref);
    if (fault === 'hold') {
      this.held.push(() => this.handle(req, res));
      return;
    }
    if (fault === 'stall-once' && !req.headers.range) {
      this.faults.delete(ref);
      // Promise the whole blob, send part of it, then keep the connection open and silent.
      res.writeHead(200, { 'content-length': String(data.length) });
      res.write(data.subarray(0, this.stallAfter.get(ref) ?? data.length >> 1));
      return;
    }
    if (fault === 'redirect') {
      res.writeHead(307, { location: `http://${this.host}/storage/${ref}?sig=secret` });
      res.end();
      return;
    }
    if (fault === 'corrupt') {
      const bad = Buffer.from(data);
      bad[bad.length - 1] ^= 0xff;
      res.writeHead(200, { 'content-length': String(bad.length) });
      res.end(bad);
      return;
    }
    if (fault === 'truncate-always') {
      const half = data.subarray(0, data.length >> 1);
      res.writeHead(200, { 'content-length': String(half.length) });
      res.end(half);
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (req.headers.range) this.ranges.push(String(req.headers.range));
    if (range && !this.ignoreRange.has(ref)) {
      const start = Number(range[1]);
      const part = data.subarray(start);
      res.writeHead(206, { 'content-length': String(part.length), 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
      res.end(part);
      return;
    }
    if (fault === 'truncate-once') {
      this.faults.delete(ref);
      // Promise the whole blob, send half, then drop the connection.
      res.writeHead(200, { 'content-length': String(data.length) });
      res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
      return;
    }
    res.writeHead(200, { 'content-length': String(data.length) });
    res.end(data);
  }
}
