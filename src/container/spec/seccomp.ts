import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../../core/errors';
import type { OciSeccomp, OciSeccompArg, OciSyscall } from '../../oci/types';
import type { SpecOpt } from './opts';
import { ARCH_MAP, defaultSeccompProfile } from './seccomp-default';

/** Node's process.arch → the Go GOARCH names docker-format profiles use in includes/excludes.arches. */
const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };

interface DockerSyscall {
  names?: string[];
  name?: string;
  action?: string;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  includes?: { caps?: string[]; arches?: string[] };
  excludes?: { caps?: string[]; arches?: string[] };
}

interface DockerProfile {
  defaultAction?: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls?: DockerSyscall[];
  flags?: string[];
}

/**
 * Converts a seccomp profile in docker/moby format (archMap, includes/excludes, "name") or in OCI format into
 * the OCI `linux.seccomp` object for this host and bounding set.
 */
export function convertSeccompProfile(raw: unknown, bounding: readonly string[], arch: string = process.arch): OciSeccomp {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('seccomp profile must be a JSON object');
  const p = raw as DockerProfile;
  if (typeof p.defaultAction !== 'string' || !p.defaultAction.startsWith('SCMP_ACT_')) {
    throw invalidArgument('seccomp profile needs a defaultAction like "SCMP_ACT_ERRNO"');
  }
  let architectures = p.architectures;
  if (!architectures && p.archMap) {
    const primary = ARCH_MAP[arch]?.architectures[0];
    const m = p.archMap.find((x) => x.architecture === primary);
    architectures = m ? [m.architecture, ...(m.subArchitectures ?? [])] : [];
  }
  const caps = new Set(bounding);
  const goarch = GOARCH[arch] ?? arch;
  const syscalls: OciSyscall[] = [];
  for (const [i, sc] of (p.syscalls ?? []).entries()) {
    const names = sc.names ?? (sc.name ? [sc.name] : []);
    if (names.length === 0 || typeof sc.action !== 'string') throw invalidArgument(`seccomp profile syscall entry ${i} needs names and an action`);
    const inc = sc.includes ?? {};
    const exc = sc.excludes ?? {};
    if (inc.caps && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc.arches && !inc.arches.includes(goarch)) continue;
    if (exc.caps && exc.caps.some((c) => caps.has(c))) continue;
    if (exc.arches && exc.arches.includes(goarch)) continue;
    const out: OciSyscall = { names: [...names], action: sc.action };
    if (sc.errnoRet !== undefined) out.errnoRet = sc.errnoRet;
    if (sc.args && sc.args.length > 0) out.args = sc.args.map((a) => ({ index: a.index, value: a.value, ...(a.valueTwo !== undefined ? { valueTwo: a.valueTwo } : {}), op: a.op }));
    syscalls.push(out);
  }
  const out: OciSeccomp = { defaultAction: p.defaultAction, architectures: architectures ?? [], syscalls };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  if (p.flags && p.flags.length > 0) out.flags = [...p.flags];
  return out;
}

/** Reads a Localhost profile (an absolute path on the node). */
export function loadLocalhostProfile(ref: string, bounding: readonly string[], arch?: string): OciSeccomp {
  const file = ref.startsWith('localhost/') ? ref.slice('localhost/'.length) : ref;
  if (!path.isAbsolute(file)) throw invalidArgument(`seccomp localhost profile ${JSON.stringify(ref)} must be an absolute path`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw invalidArgument(`cannot read seccomp profile ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? e}`, e);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`seccomp profile ${JSON.stringify(file)} is not valid JSON`, e);
  }
  return convertSeccompProfile(raw, bounding, arch);
}

/** Seccomp per the request: none for privileged or Unconfined (also the default), built-in RuntimeDefault, or a Localhost file. */
export const withSeccomp: SpecOpt = (s, ctx) => {
  const sec = ctx.input.security ?? {};
  const sp = sec.seccomp;
  delete s.linux.seccomp;
  if (sec.privileged || !sp || sp.kind === 'Unconfined') return;
  const bounding = s.process.capabilities?.bounding ?? [];
  if (sp.kind === 'RuntimeDefault') s.linux.seccomp = defaultSeccompProfile(bounding, ctx.host.arch);
  else if (sp.kind === 'Localhost') s.linux.seccomp = loadLocalhostProfile(sp.localhostRef, bounding, ctx.host.arch);
  else throw invalidArgument(`unknown seccomp profile type ${JSON.stringify((sp as { kind: string }).kind)}`);
};

/** AppArmor and SELinux: accepted; applied only where the host has them (a Localhost AppArmor profile on a host without AppArmor is an error, as in containerd). */
export const withMacLabels: SpecOpt = (s, ctx) => {
  const sec = ctx.input.security ?? {};
  const aa = sec.apparmor;
  if (aa && aa.kind !== 'Unconfined' && !sec.privileged) {
    if (!ctx.host.apparmorEnabled) {
      if (aa.kind === 'Localhost') throw invalidArgument('apparmor is not supported on this host');
    } else if (aa.kind === 'Localhost') {
      s.process.apparmorProfile = aa.localhostRef.replace(/^localhost\//, '');
    } else {
      ctx.warnings.push('apparmor RuntimeDefault requested: no default AppArmor profile is loaded by corral; running unconfined');
    }
  }
  const se = sec.selinux;
  if (se && (se.user || se.role || se.type || se.level) && ctx.host.selinuxEnabled) {
    ctx.warnings.push('selinux_options ignored: SELinux labelling is not supported by corral');
  }
};
