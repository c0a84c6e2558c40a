import { invalidArgument } from '../core/errors';

/**
 * Image references parsed and normalised the way Docker and containerd do:
 * `busybox` → `docker.io/library/busybox:latest`, `host:5000/a/b:tag`, `repo@sha256:…`, `repo:tag@sha256:…`.
 */
export interface Reference {
  /** Registry host as written (docker.io for Docker Hub), possibly with :port. */
  domain: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const MAX_NAME = 255;

const component = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${component}(?:/${component})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
/** A bare image id: 64 hex chars, optionally prefixed with sha256:. */
const ID_RE = /^(?:sha256:)?[a-f0-9]{64}$/;

export function isImageId(s: string): boolean {
  return ID_RE.test(s);
}

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Normalises a docker.io domain alias. */
function canonicalDomain(d: string): string {
  return d === 'index.docker.io' || d === 'registry-1.docker.io' ? DOCKER_HUB : d;
}

/** Splits off tag/digest and the domain, without defaults. Returns domain undefined for short names. */
function split(ref: string): { domain?: string; path: string; tag?: string; digest?: string } {
  if (ref === '') throw invalidArgument('image reference is empty');
  if (ref.length > 4096) throw invalidArgument('image reference is too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw invalidArgument(`invalid image reference "${ref}": bad digest "${digest}"`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalidArgument(`invalid image reference "${ref}": bad tag "${tag}"`);
  }
  let domain: string | undefined;
  const first = rest.indexOf('/');
  if (first >= 0) {
    const head = rest.slice(0, first);
    if (head.includes('.') || head.includes(':') || head === 'localhost' || head !== head.toLowerCase()) {
      domain = head;
      rest = rest.slice(first + 1);
      if (!DOMAIN_RE.test(domain)) throw invalidArgument(`invalid image reference "${ref}": bad registry "${domain}"`);
    }
  }
  if (!PATH_RE.test(rest)) throw invalidArgument(`invalid image reference "${ref}": repository name must be lowercase [a-z0-9._-/]`);
  return { domain, path: rest, tag, digest };
}

/**
 * Parses a reference. Short names (no registry) get `defaultDomain` (docker.io) and, on Docker Hub,
 * the `library/` prefix; a reference with neither tag nor digest gets `latest`.
 */
export function parseReference(ref: string, defaultDomain = DOCKER_HUB): Reference {
  const s = split(ref.trim());
  const domain = canonicalDomain(s.domain ?? defaultDomain);
  let p = s.path;
  if (domain === DOCKER_HUB && !p.includes('/')) p = `library/${p}`;
  if (domain.length + 1 + p.length > MAX_NAME) throw invalidArgument(`invalid image reference "${ref}": name longer than ${MAX_NAME}`);
  const tag = s.tag ?? (s.digest ? undefined : 'latest');
  return { domain, path: p, tag, digest: s.digest };
}

/** Whether a reference names no registry, so the unqualified-search registries apply. */
export function isShortName(ref: string): boolean {
  return split(ref.trim()).domain === undefined;
}

/**
 * Candidate full references for what the user wrote: one for a qualified name, one per
 * unqualified-search registry (in order) for a short name.
 */
export function candidates(ref: string, unqualifiedSearch: readonly string[]): Reference[] {
  if (!isShortName(ref)) return [parseReference(ref)];
  const regs = unqualifiedSearch.length > 0 ? unqualifiedSearch : [DOCKER_HUB];
  return regs.map((r) => parseReference(ref, r));
}

/** "docker.io/library/busybox" */
export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Full string form: name[:tag][@digest]. */
export function formatReference(r: Reference): string {
  return `${repoName(r)}${r.tag ? ':' + r.tag : ''}${r.digest ? '@' + r.digest : ''}`;
}

/** "name:tag" when tagged. */
export function tagRef(r: Reference): string | undefined {
  return r.tag ? `${repoName(r)}:${r.tag}` : undefined;
}
