import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import {
  CorralError,
  canceled,
  invalidArgument,
  notFound,
  permissionDenied,
  unauthenticated,
  unavailable,
} from '../../core/errors';
import { nullLogger, type Logger } from '../../log/logger';
import { MANIFEST_ACCEPT, isIndex, isManifest, type Descriptor } from '../media-types';
import { basicHeader, credentialsKey, parseChallenges, TokenCache, type Credentials } from './auth';
import type { Endpoint } from './hosts';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

export interface RegistryClientOptions {
  dispatcher?: Dispatcher;
  log?: Logger;
  /** Attempts per request for transient failures (network, 5xx, 429, stall). Default 4. */
  attempts?: number;
  /** First backoff delay; doubles per attempt (with jitter), capped at 5 s. Default 250 ms. */
  backoffMs?: number;
  /** A blob download moving fewer than stallBytes in stallWindowMs is aborted and resumed with Range. */
  stallBytes: number;
  stallWindowMs: number;
  maxManifestBytes?: number;
  /** Deadline for connecting and for response headers. Default 30 s. */
  headersTimeoutMs?: number;
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  data: Buffer;
}

/** Receives a blob's bytes in order; a returned promise applies backpressure. */
export type BlobSink = (chunk: Buffer) => Promise<void> | void;

const TRANSIENT = Symbol('transient');

/** The registry's fault, worth retrying. Message carries the prefix kubelet matches on. */
function transient(msg: string, cause?: unknown): CorralError {
  const e = unavailable(`RegistryUnavailable: ${msg}`, cause);
  (e as unknown as Record<symbol, boolean>)[TRANSIENT] = true;
  return e;
}

function registryFault(msg: string, cause?: unknown): CorralError {
  return unavailable(`RegistryUnavailable: ${msg}`, cause);
}

/** A failure of our own writer (disk, unpack): never the registry's fault, never retried. */
class SinkFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('sink failed');
  }
}

export function isTransient(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[TRANSIENT] === true;
}

/** URL without query or fragment: signed blob-storage URLs carry credentials there. */
export function sanitizeUrl(u: string | URL): string {
  try {
    const x = new URL(String(u));
    return `${x.origin}${x.pathname}`;
  } catch {
    return '<url>';
  }
}

function header(h: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The registry's error text from a distribution error body ({"errors":[{"code","message"}]}). */
async function errorText(res: Dispatcher.ResponseData): Promise<string> {
  const raw = await readCapped(res.body, 64 * 1024).catch(() => undefined);
  if (!raw || raw.length === 0) return `HTTP ${res.statusCode}`;
  try {
    const j = JSON.parse(raw.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = j.errors?.[0];
    if (first) return `${first.code ?? ''}${first.message ? ': ' + first.message : ''} (HTTP ${res.statusCode})`.trim();
  } catch {
    // not JSON
  }
  return `HTTP ${res.statusCode}: ${raw.toString('utf8').slice(0, 200).trim()}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(canceled('pull cancelled'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(canceled('pull cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * An OCI distribution client. Holds the connection pool and the bearer-token cache shared by all
 * pulls; `session()` binds it to one endpoint + repository + credentials.
 */
export class RegistryClient {
  readonly tokens = new TokenCache();
  /** Last challenge seen per host, so later sessions can send a cached token up front. */
  readonly challenges = new Map<string, { scheme: 'bearer' | 'basic'; realm?: string; service?: string }>();
  readonly log: Logger;
  private ownAgent?: Dispatcher;
  readonly attempts: number;
  readonly backoffMs: number;
  readonly maxManifestBytes: number;

  constructor(readonly opts: RegistryClientOptions) {
    this.log = opts.log ?? nullLogger;
    this.attempts = opts.attempts ?? 4;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxManifestBytes = opts.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  }

  /** The HTTP client. undici is loaded at the first registry request: a node restarted with its images in place may never pull, and undici costs ~5 MB of heap. */
  get dispatcher(): Dispatcher {
    if (this.opts.dispatcher) return this.opts.dispatcher;
    if (!this.ownAgent) {
      const headersTimeout = this.opts.headersTimeoutMs ?? 30_000;
      // bodyTimeout 0: the stall detector judges body progress by throughput instead.
      this.ownAgent = new (undici().Agent)({ headersTimeout, bodyTimeout: 0, connect: { timeout: headersTimeout } });
    }
    return this.ownAgent;
  }

  session(endpoint: Endpoint, creds?: Credentials): RegistrySession {
    return new RegistrySession(this, endpoint, creds);
  }

  backoff(attempt: number): number {
    const d = Math.min(5_000, this.backoffMs * 2 ** (attempt - 1));
    return d / 2 + Math.random() * (d / 2);
  }

  /** One HTTP exchange following redirects; Authorization is dropped when the origin changes. */
  async http(method: 'GET' | 'HEAD' | 'POST', url: string, headers: Record<string, string>, signal: AbortSignal, body?: string): Promise<Dispatcher.ResponseData> {
    let u = new URL(url);
    const h = { 'user-agent': 'corral/0.1', ...headers };
    for (let i = 0; i <= MAX_REDIRECTS; i++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await undici().request(u, { method, headers: h, dispatcher: this.dispatcher, signal, body });
      } catch (e) {
        if (signal.aborted) throw signal.reason instanceof CorralError ? signal.reason : canceled('pull cancelled', e);
        throw transient(`${method} ${sanitizeUrl(u)}: ${(e as Error).message}`, e);
      }
      const location = header(res.headers, 'location');
      if (REDIRECT.has(res.statusCode) && location) {
        await res.body.dump();
        const next = new URL(location, u);
        if (next.origin !== u.origin) delete (h as Record<string, string>).authorization;
        u = next;
        continue;
      }
      return res;
    }
    throw registryFault(`${method} ${sanitizeUrl(url)}: more than ${MAX_REDIRECTS} redirects`);
  }

  async close(): Promise<void> {
    await this.ownAgent?.close(); // a dispatcher passed in belongs to the caller
  }
}

export class RegistrySession {
  private authorization?: string;
  private readonly scope: string;

  constructor(
    private readonly client: RegistryClient,
    readonly endpoint: Endpoint,
    private readonly creds?: Credentials,
  ) {
    this.scope = `repository:${endpoint.path}:pull`;
    if (creds?.registryToken) {
      this.authorization = `Bearer ${creds.registryToken}`;
    } else {
      const known = client.challenges.get(endpoint.host);
      if (known?.scheme === 'basic' && creds) this.authorization = basicHeader(creds);
      if (known?.scheme === 'bearer' && known.realm) {
        const t = client.tokens.get(this.tokenKey(known.realm, known.service ?? '', this.scope));
        if (t) this.authorization = `Bearer ${t}`;
      }
    }
  }

  get host(): string {
    return this.endpoint.host;
  }

  private url(kind: 'manifests' | 'blobs', ref: string): string {
    return `${this.endpoint.base}/v2/${this.endpoint.path}/${kind}/${ref}`;
  }

  private tokenKey(realm: string, service: string, scope: string): string {
    return [realm, service, scope, credentialsKey(this.creds)].join('|');
  }

  /** Sends a request, answering one 401 challenge (Bearer token or Basic) and retrying once. */
  private async send(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    let authTried = false;
    for (;;) {
      const h = { ...headers };
      if (this.authorization) h.authorization = this.authorization;
      const res = await this.client.http('GET', url, h, signal);
      if (res.statusCode !== 401 || authTried) return res;
      authTried = true;
      const challenge = res.headers['www-authenticate'];
      await res.body.dump();
      await this.authenticate(challenge, signal);
    }
  }

  private async authenticate(header: string | string[] | undefined, signal: AbortSignal): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      const realm = bearer.params.realm;
      const service = bearer.params.service ?? '';
      const scope = bearer.params.scope || this.scope;
      this.client.challenges.set(this.host, { scheme: 'bearer', realm, service });
      const key = this.tokenKey(realm, service, scope);
      let token = this.client.tokens.get(key);
      if (!token || this.authorization === `Bearer ${token}`) {
        const fetched = await this.fetchToken(realm, service, scope, signal);
        this.client.tokens.set(key, fetched.token, fetched.expiresIn);
        token = fetched.token;
      }
      this.authorization = `Bearer ${token}`;
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.client.challenges.set(this.host, { scheme: 'basic' });
      const h = this.creds && basicHeader(this.creds);
      if (!h) throw unauthenticated(`registry ${this.host}: authentication required and no credentials were given`);
      this.authorization = h;
      return;
    }
    throw unauthenticated(`registry ${this.host}: authentication required (unsupported challenge "${String(header ?? '')}")`);
  }

  private async fetchToken(realm: string, service: string, scope: string, signal: AbortSignal): Promise<{ token: string; expiresIn: number }> {
    let res: Dispatcher.ResponseData;
    if (this.creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.identityToken, service, scope, client_id: 'corral' });
      res = await this.client.http('POST', realm, { 'content-type': 'application/x-www-form-urlencoded' }, signal, form.toString());
    } else {
      const u = new URL(realm);
      if (service) u.searchParams.set('service', service);
      u.searchParams.set('scope', scope);
      const h: Record<string, string> = {};
      const basic = this.creds && basicHeader(this.creds);
      if (basic) h.authorization = basic;
      res = await this.client.http('GET', u.toString(), h, signal);
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw unauthenticated(`registry ${this.host}: authentication failed at token endpoint ${sanitizeUrl(realm)}: ${await errorText(res)}`);
    }
    if (res.statusCode >= 500 || res.statusCode === 429) throw transient(`token endpoint ${sanitizeUrl(realm)}: ${await errorText(res)}`);
    if (res.statusCode !== 200) throw registryFault(`token endpoint ${sanitizeUrl(realm)}: ${await errorText(res)}`);
    const raw = await readCapped(res.body, 1024 * 1024);
    let j: { token?: string; access_token?: string; expires_in?: number };
    try {
      j = JSON.parse(raw?.toString('utf8') ?? '');
    } catch {
      throw registryFault(`token endpoint ${sanitizeUrl(realm)} returned no JSON`);
    }
    const token = j.token || j.access_token;
    if (!token) throw registryFault(`token endpoint ${sanitizeUrl(realm)} returned no token`);
    return { token, expiresIn: typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60 };
  }

  /** Maps a non-success status to the domain error; 5xx/429 are transient. */
  private async statusError(res: Dispatcher.ResponseData, what: string): Promise<CorralError> {
    const text = await errorText(res);
    const s = res.statusCode;
    if (s === 404) return notFound(`${what} not found in ${this.host}: ${text}`);
    if (s === 401) return unauthenticated(`registry ${this.host}: authentication failed for ${what}: ${text}`);
    if (s === 403) return permissionDenied(`registry ${this.host}: access to ${what} denied: ${text}`);
    if (s === 429 || s >= 500) return transient(`${this.host}: ${what}: ${text}`);
    return registryFault(`${this.host}: ${what}: ${text}`);
  }

  /** Runs fn, retrying transient failures with exponential backoff. */
  private async retrying<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) || attempt >= this.client.attempts || signal.aborted) throw e;
        this.client.log.debug('registry request failed, retrying', { host: this.host, attempt, error: (e as Error).message });
        await sleep(this.client.backoff(attempt), signal);
      }
    }
  }

  /** GET a manifest or index by tag or digest, with the size cap and digest check. */
  async getManifest(ref: string, signal: AbortSignal): Promise<FetchedManifest> {
    const what = `manifest ${this.endpoint.path}:${ref}`;
    const max = this.client.maxManifestBytes;
    return this.retrying(signal, async () => {
      const res = await this.send(this.url('manifests', ref), { accept: MANIFEST_ACCEPT }, signal);
      if (res.statusCode !== 200) throw await this.statusError(res, what);
      const len = Number(header(res.headers, 'content-length') ?? '0');
      if (len > max) {
        res.body.destroy();
        throw invalidArgument(`${what} from ${this.host} is ${len} bytes, more than the ${max}-byte limit`);
      }
      let data: Buffer | undefined;
      try {
        data = await readCapped(res.body, max);
      } catch (e) {
        throw transient(`${what}: reading body: ${(e as Error).message}`, e);
      }
      if (!data) throw invalidArgument(`${what} from ${this.host} is larger than the ${max}-byte limit`);
      const digest = `sha256:${sha256Hex(data)}`;
      if (ref.includes(':') && ref.startsWith('sha256:') && ref !== digest) {
        throw registryFault(`${what}: content digest ${digest} does not match`);
      }
      const mediaType = this.manifestMediaType(header(res.headers, 'content-type'), data, what);
      return { mediaType, digest, data };
    });
  }

  private manifestMediaType(contentType: string | undefined, data: Buffer, what: string): string {
    let parsed: { mediaType?: string; schemaVersion?: number; manifests?: unknown; config?: unknown } = {};
    try {
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      throw registryFault(`${what}: body is not JSON`);
    }
    if (parsed.schemaVersion === 1) throw invalidArgument(`${what}: Docker schema 1 manifests are not supported`);
    const ct = (contentType ?? '').split(';')[0].trim();
    let mt = isIndex(ct) || isManifest(ct) ? ct : parsed.mediaType ?? '';
    if (!mt && parsed.schemaVersion === 2) {
      if (Array.isArray(parsed.manifests)) mt = 'application/vnd.oci.image.index.v1+json';
      else if (parsed.config) mt = 'application/vnd.oci.image.manifest.v1+json';
    }
    if (!isIndex(mt) && !isManifest(mt)) throw invalidArgument(`${what}: unsupported manifest media type "${mt || ct}"`);
    return mt;
  }

  /** GET a small blob (image config) into memory, verified. */
  async getBlobBuffer(desc: Descriptor, signal: AbortSignal, max = 16 * 1024 * 1024): Promise<Buffer> {
    if (desc.size > max) throw invalidArgument(`blob ${desc.digest} is ${desc.size} bytes, more than the ${max}-byte limit`);
    const chunks: Buffer[] = [];
    await this.fetchBlob(desc, (c) => void chunks.push(c), signal);
    return Buffer.concat(chunks);
  }

  /**
   * Streams a blob into sink, hashing and counting as it goes. An interrupted or stalled transfer
   * resumes with a Range request from the last byte received. Size or digest mismatch → error.
   */
  async fetchBlob(desc: Descriptor, sink: BlobSink, signal: AbortSignal): Promise<void> {
    if (!/^sha256:[a-f0-9]{64}$/.test(desc.digest)) throw invalidArgument(`unsupported blob digest "${desc.digest}"`);
    const hash = createHash('sha256');
    const state = { received: 0 };
    let failures = 0;
    for (;;) {
      const before = state.received;
      try {
        await this.blobAttempt(desc, hash, state, sink, signal);
        break;
      } catch (e) {
        if (!isTransient(e) || signal.aborted) throw e;
        failures = state.received > before ? 1 : failures + 1;
        if (failures >= this.client.attempts) throw e;
        this.client.log.debug('blob download interrupted, resuming', { digest: desc.digest, at: state.received, error: (e as Error).message });
        await sleep(this.client.backoff(failures), signal);
      }
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== desc.digest) throw registryFault(`${this.host}: blob ${desc.digest} digest mismatch: content hashes to ${got}`);
  }

  private async blobAttempt(
    desc: Descriptor,
    hash: ReturnType<typeof createHash>,
    state: { received: number },
    sink: BlobSink,
    signal: AbortSignal,
  ): Promise<void> {
    const what = `blob ${desc.digest}`;
    const ac = new AbortController();
    const onOuter = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onOuter, { once: true });
    let windowBytes = 0;
    let sinkMs = 0;
    let stalled = false;
    const windowMs = this.client.opts.stallWindowMs;
    const timer = setInterval(() => {
      // Only blame the registry when our own writing was not what held the transfer back.
      if (windowBytes < this.client.opts.stallBytes && sinkMs < windowMs / 2) {
        stalled = true;
        ac.abort(transient(`${this.host}: ${what} stalled: fewer than ${this.client.opts.stallBytes} bytes in ${windowMs / 1000} s`));
      }
      windowBytes = 0;
      sinkMs = 0;
    }, windowMs);
    try {
      const headers: Record<string, string> = {};
      if (state.received > 0) headers.range = `bytes=${state.received}-`;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.send(this.url('blobs', desc.digest), headers, ac.signal);
      } catch (e) {
        if (stalled) throw ac.signal.reason;
        throw e;
      }
      let skip = 0;
      if (res.statusCode === 206) {
        const cr = header(res.headers, 'content-range') ?? '';
        const m = /^bytes (\d+)-/.exec(cr);
        if (!m || Number(m[1]) !== state.received) {
          res.body.destroy();
          throw transient(`${this.host}: ${what}: unexpected Content-Range "${cr}"`);
        }
      } else if (res.statusCode === 200) {
        skip = state.received; // the server ignored Range: drop what we already have
      } else {
        throw await this.statusError(res, what);
      }
      try {
        for await (const raw of res.body) {
          let chunk = raw as Buffer;
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (chunk.length === 0) continue;
          }
          state.received += chunk.length;
          if (state.received > desc.size) {
            res.body.destroy();
            throw registryFault(`${this.host}: ${what} is larger than its descriptor size ${desc.size}`);
          }
          windowBytes += chunk.length;
          hash.update(chunk);
          const t0 = Date.now();
          try {
            await sink(chunk);
          } catch (e) {
            throw new SinkFailure(e);
          }
          sinkMs += Date.now() - t0;
        }
      } catch (e) {
        if (e instanceof SinkFailure) throw e.cause;
        if (e instanceof CorralError && !isTransient(e)) throw e;
        if (stalled) throw ac.signal.reason;
        if (signal.aborted) throw signal.reason instanceof CorralError ? signal.reason : canceled('pull cancelled', e);
        throw transient(`${this.host}: ${what}: transfer interrupted at byte ${state.received}: ${(e as Error).message}`, e);
      }
      if (state.received < desc.size) {
        throw transient(`${this.host}: ${what} truncated: got ${state.received} of ${desc.size} bytes`);
      }
    } finally {
      clearInterval(timer);
      signal.removeEventListener('abort', onOuter);
    }
  }
}

function undici(): typeof import('undici') {
  return require('undici');
}
