import { lstatSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../../core/errors';
import type { ResolvedUser, SecurityInput } from './input';
import type { SpecOpt } from './opts';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** runc accepts uid/gid up to MaxInt32. */
const MAX_ID = 2 ** 31 - 1;

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = parseId(f[2]);
    const gid = parseId(f[3]);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = parseId(f[2]);
    if (gid === undefined) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

/**
 * Reads a file of the image root: one directory, or overlay lowerdirs top layer first where the first
 * layer that has the file (or a whiteout for it) decides. Symlinks are not followed (they could point
 * outside the image); a whiteout or an absent file gives undefined.
 */
export function readImageFile(root: string | readonly string[], rel: string): string | undefined {
  const layers = typeof root === 'string' ? [root] : root;
  const dirRel = path.posix.dirname(rel);
  const base = path.posix.basename(rel);
  for (const layer of layers) {
    const p = path.join(layer, rel);
    const st = lstatSafe(p);
    if (st) {
      if (st.isFile()) return readFileSync(p, 'utf8');
      return undefined; // char-device whiteout, directory or symlink: not a usable file
    }
    if (lstatSafe(path.join(layer, dirRel, `.wh.${base}`))) return undefined;
    if (lstatSafe(path.join(layer, dirRel, '.wh..wh..opq'))) return undefined;
  }
  return undefined;
}

function lstatSafe(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The user string the container runs as: the request's user (and group) override the image's USER. */
export function userString(sec: SecurityInput, imageUser: string | undefined): string {
  const group = sec.runAsGroup;
  let user: string | undefined;
  if (sec.runAsUsername) user = sec.runAsUsername;
  else if (sec.runAsUser !== undefined) user = checkId(sec.runAsUser, 'run_as_user').toString();
  if (user === undefined) {
    if (group !== undefined) throw invalidArgument(`run_as_group ${group} is specified without run_as_user or run_as_username`);
    return imageUser ?? '';
  }
  return group !== undefined ? `${user}:${checkId(group, 'run_as_group')}` : user;
}

function checkId(v: bigint, what: string): number {
  if (v < 0n || v > BigInt(MAX_ID)) throw invalidArgument(`${what} ${v} is out of range 0..${MAX_ID}`);
  return Number(v);
}

export interface UserDb {
  passwd?: PasswdEntry[];
  group?: GroupEntry[];
}

export function loadUserDb(root: string | readonly string[]): UserDb {
  const p = readImageFile(root, 'etc/passwd');
  const g = readImageFile(root, 'etc/group');
  return { passwd: p !== undefined ? parsePasswd(p) : undefined, group: g !== undefined ? parseGroup(g) : undefined };
}

/**
 * Resolves "user", "uid", "user:group", "uid:gid", ... against the image's passwd/group like containerd:
 * a numeric uid missing from /etc/passwd runs with gid 0; an unknown name is an error.
 */
export function resolveUser(
  userstr: string,
  db: UserDb,
  supplemental: readonly bigint[] = [],
  policy: 'Merge' | 'Strict' = 'Merge',
): ResolvedUser {
  const parts = userstr === '' ? ['0'] : userstr.split(':');
  if (parts.length > 2 || parts.some((p) => p === '')) throw invalidArgument(`invalid user ${JSON.stringify(userstr)}`);
  let uid: number;
  let gid: number;
  let username: string | undefined;
  const uidNum = parseIdOrRange(parts[0], 'uid', userstr);
  if (uidNum !== undefined) {
    uid = uidNum;
    const e = db.passwd?.find((x) => x.uid === uid);
    username = e?.name;
    gid = e?.gid ?? 0;
  } else {
    const e = db.passwd?.find((x) => x.name === parts[0]);
    if (!e) throw invalidArgument(`user ${JSON.stringify(parts[0])} not found in the image's /etc/passwd`);
    ({ uid, gid, name: username } = e);
  }
  if (parts.length === 2) {
    const gidNum = parseIdOrRange(parts[1], 'gid', userstr);
    if (gidNum !== undefined) gid = gidNum;
    else {
      const g = db.group?.find((x) => x.name === parts[1]);
      if (!g) throw invalidArgument(`group ${JSON.stringify(parts[1])} not found in the image's /etc/group`);
      gid = g.gid;
    }
  }
  const groups: number[] = [gid];
  if (policy === 'Merge' && username !== undefined) {
    for (const g of db.group ?? []) if (g.name !== username && g.members.includes(username)) groups.push(g.gid);
  }
  for (const g of supplemental) groups.push(checkId(g, 'supplemental group'));
  return { uid, gid, supplementalGroups: [...new Set(groups)] };
}

function parseIdOrRange(s: string, what: string, userstr: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = parseId(s);
  if (n === undefined) throw invalidArgument(`invalid user ${JSON.stringify(userstr)}: ${what} out of range`);
  return n;
}

export const withUser: SpecOpt = (s, ctx) => {
  const sec = ctx.input.security ?? {};
  const userstr = userString(sec, ctx.input.image.User || undefined);
  const u = resolveUser(userstr, loadUserDb(ctx.input.imageRoot), sec.supplementalGroups, sec.supplementalGroupsPolicy);
  s.process.user = { uid: u.uid, gid: u.gid, additionalGids: u.supplementalGroups };
  ctx.user = u;
};
