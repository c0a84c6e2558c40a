import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../core/errors';
import { run } from '../sys/exec';
import { mountPoints, unmountAll } from '../sys/mount';

/** The kernel copies mount data into one page: the option string must stay below it. */
export const MOUNT_DATA_LIMIT = 4096 - 1;

export interface OverlayPlan {
  /** The -o value for mount(8). */
  options: string;
  /** Run mount in this directory (lowerdirs are then short relative links below it). */
  cwd?: string;
  /** Short link name → layer dir, to create before mounting (relative to cwd). */
  links: { name: string; target: string }[];
}

function overlayOptions(lower: readonly string[], upper: string, work: string): string {
  // ':' and ',' separate overlay options; our paths never contain them (ids and digests are hex).
  return `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`;
}

/**
 * The overlay mount options for lowerdirs (top layer first). When the absolute paths do not fit in a page,
 * each layer gets a short symlink `l/<n>` under linkDir and mount runs there with relative paths
 * (what Docker's overlay2 does).
 */
export function planOverlay(lower: readonly string[], upper: string, work: string, linkDir: string, limit = MOUNT_DATA_LIMIT): OverlayPlan {
  if (lower.length === 0) throw invalidArgument('the image has no layers');
  for (const p of [...lower, upper, work]) {
    if (/[:,]/.test(p)) throw invalidArgument(`overlay path ${JSON.stringify(p)} contains ':' or ','`);
  }
  const full = overlayOptions(lower, upper, work);
  if (full.length <= limit) return { options: full, links: [] };
  const links = lower.map((target, i) => ({ name: `l/${i.toString(36)}`, target }));
  const short = overlayOptions(links.map((l) => l.name), path.relative(linkDir, upper), path.relative(linkDir, work));
  if (short.length > limit) throw invalidArgument(`the image has too many layers (${lower.length}) for one overlay mount`);
  return { options: short, cwd: linkDir, links };
}

export interface RootfsPaths {
  /** Per-container dir holding upper/ and work/ (and the l/ links when needed). */
  dir: string;
  upper: string;
  work: string;
  target: string;
}

/** Creates upper/work and mounts the overlay at target. The caller's rollback unmounts (unmountRootfs). */
export async function mountRootfs(lower: readonly string[], p: RootfsPaths, timeoutMs = 30_000): Promise<void> {
  await fs.mkdir(p.upper, { recursive: true, mode: 0o755 });
  await fs.mkdir(p.work, { recursive: true, mode: 0o700 });
  await fs.mkdir(p.target, { recursive: true, mode: 0o755 });
  const plan = planOverlay(lower, p.upper, p.work, p.dir);
  for (const l of plan.links) {
    const at = path.join(p.dir, l.name);
    await fs.mkdir(path.dirname(at), { recursive: true });
    await fs.rm(at, { force: true });
    await fs.symlink(l.target, at);
  }
  await run('mount', ['-t', 'overlay', '-o', plan.options, 'overlay', p.target], { timeoutMs, cwd: plan.cwd });
}

export async function isMounted(target: string): Promise<boolean> {
  return (await mountPoints()).has(target);
}

/** Unmounts the rootfs (all stacked mounts). Idempotent. */
export async function unmountRootfs(target: string, timeoutMs = 30_000): Promise<void> {
  await unmountAll([target], timeoutMs);
}
