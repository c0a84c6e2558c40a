import { createHash } from 'node:crypto';
import { invalidArgument } from '../../core/errors';

/** Credentials for one registry, from the CRI AuthConfig kubelet passes. Never logged. */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token, exchanged at the token endpoint (Docker "identitytoken"). */
  identityToken?: string;
  /** A bearer token sent to the registry as is. */
  registryToken?: string;
}

export interface AuthConfigInput {
  username?: string;
  password?: string;
  auth?: string;
  identity_token?: string;
  registry_token?: string;
}

/** Converts an AuthConfig; undefined when it carries nothing. `auth` is base64("user:password"). */
export function credentialsFromAuthConfig(a: AuthConfigInput | null | undefined): Credentials | undefined {
  if (!a) return undefined;
  const c: Credentials = {};
  if (a.username) c.username = a.username;
  if (a.password) c.password = a.password;
  if (a.auth) {
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) throw invalidArgument('auth.auth is not base64 of "username:password"');
    c.username = decoded.slice(0, i);
    c.password = decoded.slice(i + 1);
  }
  if (a.identity_token) c.identityToken = a.identity_token;
  if (a.registry_token) c.registryToken = a.registry_token;
  return Object.keys(c).length > 0 ? c : undefined;
}

/** A stable, non-reversible key for credentials (token cache keys must not mix users). */
export function credentialsKey(c: Credentials | undefined): string {
  if (!c) return 'anonymous';
  return createHash('sha256').update(JSON.stringify([c.username, c.password, c.identityToken, c.registryToken])).digest('hex').slice(0, 16);
}

export function basicHeader(c: Credentials): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses WWW-Authenticate: `Bearer realm="…",service="…",scope="…"` (one or more challenges). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  const re = /([A-Za-z][\w-]*)(?:\s+|$)((?:[\w-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0] === '') {
      re.lastIndex++;
      continue;
    }
    const params: Record<string, string> = {};
    const pre = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    let p: RegExpExecArray | null;
    while ((p = pre.exec(m[2] ?? '')) !== null) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
    out.push({ scheme: m[1].toLowerCase(), params });
  }
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Bearer tokens by realm+service+scope+credentials, until shortly before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  constructor(private readonly now: () => number = Date.now) {}

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= this.now()) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  set(key: string, token: string, expiresInSeconds: number): void {
    // Refresh 10 s early so a token never expires in the middle of a request.
    const ttl = Math.max(1, expiresInSeconds - 10) * 1000;
    this.tokens.set(key, { token, expiresAt: this.now() + ttl });
    if (this.tokens.size > 1000) this.tokens.delete(this.tokens.keys().next().value as string);
  }
}
