import { permissionDenied } from '../../core/errors';
import type { MirrorRule } from '../../config/schema';
import { DOCKER_HUB, repoName, type Reference } from '../reference';

/** The registries section of the config, as the resolver needs it. */
export interface RegistriesConfig {
  insecure: readonly string[];
  blocked: readonly string[];
  mirrors: readonly MirrorRule[];
}

/** One place an image can be fetched from. */
export interface Endpoint {
  /** "https://host:port" (no trailing slash). */
  base: string;
  /** host[:port] as used for credentials and messages. */
  host: string;
  /** Repository path at this endpoint. */
  path: string;
  mirror: boolean;
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const i = hostPort.lastIndexOf(':');
  return i >= 0 && hostPort.indexOf(':') === i ? hostPort.slice(0, i) : hostPort;
}

/** localhost, 127.0.0.0/8 and ::1 are spoken to over plain HTTP, as Docker does. */
export function isLoopback(hostPort: string): boolean {
  const h = hostOnly(hostPort).toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Whether `name` (domain/path) falls under `prefix` on a path-component boundary; "*.example.com" matches subdomains. */
export function prefixMatches(prefix: string, name: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  if (p.startsWith('*.')) {
    const domain = name.split('/')[0];
    return domain.endsWith(p.slice(1));
  }
  return name === p || name.startsWith(p + '/');
}

function splitLocation(loc: string): { host: string; path: string } {
  const i = loc.indexOf('/');
  return i < 0 ? { host: loc, path: '' } : { host: loc.slice(0, i), path: loc.slice(i + 1).replace(/\/+$/, '') };
}

function apiHost(host: string): string {
  return host === DOCKER_HUB ? 'registry-1.docker.io' : host;
}

/** Throws PermissionDenied when configuration blocks the repository. */
export function checkBlocked(ref: Reference, cfg: RegistriesConfig): void {
  const name = repoName(ref);
  const hit = cfg.blocked.find((b) => prefixMatches(b, name));
  if (hit) throw permissionDenied(`pulling "${name}" is blocked by configuration (registries.blocked "${hit}")`);
}

/**
 * Endpoints to try for a reference, in order: the locations of the longest matching mirror rule,
 * then the upstream registry unless the rule is mirror_only.
 */
export function resolveEndpoints(ref: Reference, cfg: RegistriesConfig): Endpoint[] {
  checkBlocked(ref, cfg);
  const name = repoName(ref);
  const insecure = (h: string) => isLoopback(h) || cfg.insecure.some((i) => i === h || hostOnly(i) === h);
  const out: Endpoint[] = [];
  const rule = [...cfg.mirrors]
    .filter((m) => m.prefix && prefixMatches(m.prefix, name))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
  if (rule) {
    const prefix = rule.prefix.replace(/\/+$/, '');
    const rest = prefix.startsWith('*.') ? name.slice(name.indexOf('/')) : name.slice(prefix.length);
    for (const loc of rule.locations) {
      const mapped = splitLocation(loc.replace(/\/+$/, '') + rest);
      if (!mapped.path) continue;
      const scheme = rule.insecure || insecure(mapped.host) ? 'http' : 'https';
      out.push({ base: `${scheme}://${apiHost(mapped.host)}`, host: mapped.host, path: mapped.path, mirror: true });
    }
    if (rule.mirror_only) return out;
  }
  const scheme = insecure(ref.domain) ? 'http' : 'https';
  out.push({ base: `${scheme}://${apiHost(ref.domain)}`, host: ref.domain, path: ref.path, mirror: false });
  return out;
}
