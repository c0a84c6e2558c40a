import { parseReference, repoName } from './reference';

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

/**
 * Whether an image with these tags/digests matches a pinned pattern: a glob ("registry.k8s.io/pause*")
 * against the full tag, digest reference or repository name; or a plain reference, normalised
 * ("busybox" = docker.io/library/busybox, any tag when none was written).
 */
export function isPinned(patterns: readonly string[], repoTags: readonly string[], repoDigests: readonly string[]): boolean {
  const names = [...repoTags, ...repoDigests];
  const repos = names.map((n) => n.replace(/@.*$/, '').replace(/:[^/:]*$/, ''));
  for (const pat of patterns) {
    if (!pat) continue;
    if (/[*?]/.test(pat)) {
      const re = globToRegExp(pat);
      if (names.some((n) => re.test(n)) || repos.some((r) => re.test(r))) return true;
      continue;
    }
    let ref;
    try {
      ref = parseReference(pat);
    } catch {
      continue;
    }
    const hasTag = /:[^/]*$/.test(pat.replace(/@.*$/, '')) || pat.includes('@');
    if (!hasTag && repos.includes(repoName(ref))) return true;
    if (ref.tag && repoTags.includes(`${repoName(ref)}:${ref.tag}`)) return true;
    if (ref.digest && repoDigests.includes(`${repoName(ref)}@${ref.digest}`)) return true;
  }
  return false;
}
