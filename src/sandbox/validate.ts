import * as path from 'node:path';
import { isIP } from 'node:net';
import { invalidArgument } from '../core/errors';
import { checkCgroupParent } from '../sys/cgroups';
import type { PodSandboxSpec } from './types';

/** Normalises a sysctl name: kubelet allows "/" separators ("net/ipv4/ip_forward"). */
export function normaliseSysctlName(name: string): string {
  return name.includes('/') ? name.replace(/\//g, '.') : name;
}

/**
 * Classifies a sysctl by the namespace that makes it safe to set per pod; undefined when it is not
 * namespaced (setting it would change the node).
 */
export function sysctlNamespace(name: string): 'net' | 'ipc' | 'uts' | undefined {
  if (name.startsWith('net.')) return 'net';
  if (name.startsWith('fs.mqueue.') || name === 'kernel.sem' || /^kernel\.(shm|msg)/.test(name)) return 'ipc';
  if (name === 'kernel.hostname' || name === 'kernel.domainname') return 'uts';
  return undefined;
}

/** Parses a size like "64Mi", "128m", "1g" or plain bytes. */
export function parseSize(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?\s*$/i.exec(v);
  if (!m) return undefined;
  const pow = ' kmgt'.indexOf(m[2].toLowerCase() || ' ');
  return Math.round(Number(m[1]) * 1024 ** pow);
}

export const SHM_SIZE_ANNOTATION = 'io.kubernetes.cri-o.ShmSize';
export const DEFAULT_SHM_BYTES = 64 * 1024 * 1024;

/** Checks a spec and returns it normalised (sysctl names with dots). Pure: touches nothing. */
export function validateSpec(s: PodSandboxSpec, knownHandler: (name: string) => boolean): PodSandboxSpec {
  const m = s.metadata;
  if (!m.name) throw invalidArgument('PodSandboxConfig.metadata.name is required');
  if (!m.namespace) throw invalidArgument('PodSandboxConfig.metadata.namespace is required');
  if (!m.uid) throw invalidArgument('PodSandboxConfig.metadata.uid is required');
  if (!Number.isInteger(m.attempt) || m.attempt < 0) throw invalidArgument('PodSandboxConfig.metadata.attempt must be >= 0');
  if (s.logDirectory && !path.isAbsolute(s.logDirectory)) {
    throw invalidArgument(`log_directory must be an absolute path, got ${JSON.stringify(s.logDirectory)}`);
  }
  if (s.runtimeHandler && !knownHandler(s.runtimeHandler)) {
    throw invalidArgument(`unknown runtime handler ${JSON.stringify(s.runtimeHandler)}`);
  }
  if (s.hostname && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(s.hostname)) {
    throw invalidArgument(`invalid hostname ${JSON.stringify(s.hostname)}`);
  }
  const ns = s.namespaces;
  if (ns.network !== 'pod' && ns.network !== 'node') throw invalidArgument(`network namespace mode ${ns.network} is not valid for a pod`);
  if (ns.ipc !== 'pod' && ns.ipc !== 'node') throw invalidArgument(`IPC namespace mode ${ns.ipc} is not valid for a pod`);
  if (ns.pid === 'target') throw invalidArgument('PID namespace mode TARGET is not valid for a pod');
  const sysctls: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(s.sysctls)) {
    const name = normaliseSysctlName(rawName);
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_*-]+)+$/.test(name)) throw invalidArgument(`sysctl ${JSON.stringify(rawName)}: invalid name`);
    if (value === '' || /[\n\r\0]/.test(value)) throw invalidArgument(`sysctl ${name}: invalid value ${JSON.stringify(value)}`);
    const kind = sysctlNamespace(name);
    if (!kind) throw invalidArgument(`sysctl ${name} is not namespaced and cannot be set per pod`);
    if (kind === 'net' && ns.network === 'node') throw invalidArgument(`sysctl ${name} needs a pod network namespace (pod uses host network)`);
    if (kind === 'ipc' && ns.ipc === 'node') throw invalidArgument(`sysctl ${name} needs a pod IPC namespace (pod uses host IPC)`);
    if (kind === 'uts' && ns.network === 'node') throw invalidArgument(`sysctl ${name} needs a pod UTS namespace (pod uses host network)`);
    sysctls[name] = value;
  }
  for (const [i, p] of s.portMappings.entries()) {
    const where = `port_mappings[${i}]`;
    if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) throw invalidArgument(`${where}: container_port ${p.containerPort} out of range`);
    if (!Number.isInteger(p.hostPort) || p.hostPort < 0 || p.hostPort > 65535) throw invalidArgument(`${where}: host_port ${p.hostPort} out of range`);
    if (p.hostIp && !isIP(p.hostIp)) throw invalidArgument(`${where}: host_ip ${JSON.stringify(p.hostIp)} is not an IP address`);
  }
  for (const srv of s.dns?.servers ?? []) if (!isIP(srv)) throw invalidArgument(`dns_config: server ${JSON.stringify(srv)} is not an IP address`);
  const cg = checkCgroupParentFor(s.cgroupParent);
  if (cg) throw invalidArgument(cg);
  if (s.seccomp.type === 'localhost' && !path.isAbsolute(s.seccomp.path)) {
    throw invalidArgument(`seccomp localhost profile must be an absolute path, got ${JSON.stringify(s.seccomp.path)}`);
  }
  const shm = s.annotations[SHM_SIZE_ANNOTATION];
  if (shm !== undefined && !(parseSize(shm)! > 0)) throw invalidArgument(`annotation ${SHM_SIZE_ANNOTATION}: invalid size ${JSON.stringify(shm)}`);
  return { ...s, sysctls };
}

function checkCgroupParentFor(parent: string): string | undefined {
  // The driver-specific form is checked again when the cgroups path is built.
  return checkCgroupParent('cgroupfs', parent);
}

export function shmSizeOf(s: PodSandboxSpec): number {
  const v = s.annotations[SHM_SIZE_ANNOTATION];
  return (v !== undefined ? parseSize(v) : undefined) ?? DEFAULT_SHM_BYTES;
}

/** JSON with sorted keys: equal specs give equal strings (used to tell a retry from a conflicting config). */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
