import { invalidArgument } from '../../core/errors';
import { cgroupsPathFor, checkCgroupParent } from '../../sys/cgroups';
import type { NamespaceInput } from './input';
import type { OciNamespace, OciSpec } from '../../oci/types';
import type { SpecOpt } from './opts';

/** OCI namespaces for a container of the pod: join the pod's net/IPC/UTS, PID per mode, own mount namespace. */
export function containerNamespaces(ns: NamespaceInput): OciNamespace[] {
  const out: OciNamespace[] = [{ type: 'mount' }];
  if (ns.network) out.push({ type: 'network', path: ns.network });
  if (ns.ipc) out.push({ type: 'ipc', path: ns.ipc });
  if (ns.uts) out.push({ type: 'uts', path: ns.uts });
  switch (ns.pidMode) {
    case 'container':
      out.push({ type: 'pid' });
      break;
    case 'node':
      break;
    case 'pod':
    case 'target':
      if (!ns.pidPath) {
        throw invalidArgument(ns.pidMode === 'pod' ? 'the pod has no PID namespace to join' : 'PID namespace target has no namespace path');
      }
      out.push({ type: 'pid', path: ns.pidPath });
      break;
    default:
      throw invalidArgument(`unknown PID namespace mode ${JSON.stringify(ns.pidMode)}`);
  }
  return out;
}

export const withNamespaces: SpecOpt = (s, ctx) => {
  s.linux.namespaces = containerNamespaces(ctx.input.pod.namespaces);
};

export const withCgroupsPath: SpecOpt = (s, ctx) => {
  const { cgroupManager } = ctx.host;
  const parent = ctx.input.pod.cgroupParent;
  const bad = checkCgroupParent(cgroupManager, parent);
  if (bad) throw invalidArgument(bad);
  s.linux.cgroupsPath = cgroupsPathFor(cgroupManager, parent, 'corral', ctx.input.id);
};

/** The namespace a namespaced sysctl belongs to (runc refuses one whose namespace is the host's). */
export function sysctlNamespace(name: string): 'network' | 'ipc' | 'uts' | undefined {
  if (name.startsWith('net.')) return 'network';
  if (name.startsWith('fs.mqueue.') || ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'].includes(name)) return 'ipc';
  if (name === 'kernel.hostname' || name === 'kernel.domainname') return 'uts';
  return undefined;
}

export const withSysctls: SpecOpt = (s, ctx) => {
  const sysctls = ctx.input.pod.sysctls ?? {};
  const names = Object.keys(sysctls);
  if (names.length === 0) return;
  for (const n of names) {
    const ns = sysctlNamespace(n);
    if (!ns) throw invalidArgument(`sysctl ${JSON.stringify(n)} is not namespaced and cannot be set for a container`);
    if (!s.linux.namespaces.some((x) => x.type === ns)) {
      throw invalidArgument(`sysctl ${JSON.stringify(n)} needs a private ${ns} namespace, but the pod uses the host's`);
    }
  }
  s.linux.sysctl = { ...sysctls };
};

export const withRoot: SpecOpt = (s, ctx) => {
  s.root = { path: ctx.input.rootfsPath, readonly: !!ctx.input.security?.readonlyRootfs };
};

/** Request annotations plus containerd's io.kubernetes.cri.* ones (which a request cannot override). */
export const withAnnotations: SpecOpt = (s, ctx) => {
  const i = ctx.input;
  const ours: Record<string, string> = {
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': i.name,
    'io.kubernetes.cri.sandbox-id': i.pod.id,
  };
  if (i.pod.name) ours['io.kubernetes.cri.sandbox-name'] = i.pod.name;
  if (i.pod.namespace) ours['io.kubernetes.cri.sandbox-namespace'] = i.pod.namespace;
  if (i.pod.uid) ours['io.kubernetes.cri.sandbox-uid'] = i.pod.uid;
  if (i.imageName) ours['io.kubernetes.cri.image-name'] = i.imageName;
  s.annotations = { ...(i.annotations ?? {}), ...ours };
};

export const withNoNewPrivileges: SpecOpt = (s, ctx) => {
  s.process.noNewPrivileges = !!ctx.input.security?.noNewPrivs;
};

/** Masked and read-only /proc and /sys paths: defaults unless the request lists them ([] = none). */
export const withMaskedPaths: SpecOpt = (s, ctx) => {
  const sec = ctx.input.security ?? {};
  for (const p of [...(sec.maskedPaths ?? []), ...(sec.readonlyPaths ?? [])]) {
    if (!p.startsWith('/')) throw invalidArgument(`masked/readonly path ${JSON.stringify(p)} must be absolute`);
  }
  if (sec.maskedPaths !== undefined) s.linux.maskedPaths = [...sec.maskedPaths];
  if (sec.readonlyPaths !== undefined) s.linux.readonlyPaths = [...sec.readonlyPaths];
};

/** Type helper for tests and callers that only need to look at one namespace. */
export function namespaceOf(s: OciSpec, type: OciNamespace['type']): OciNamespace | undefined {
  return s.linux.namespaces.find((n) => n.type === type);
}
