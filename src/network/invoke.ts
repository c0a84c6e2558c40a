import { promises as fs, constants } from 'node:fs';
import * as path from 'node:path';
import { run } from '../sys/exec';
import { internal, notFound, deadlineExceeded, isCorralError } from '../core/errors';
import type { NetworkConfigList, PluginConf } from './config';

/** The pod an attachment belongs to (CNI_ARGS K8S_* values). */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
  /** The sandbox id (CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID). */
  id: string;
}

export interface PortMappingArg {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/** Capability args offered to plugins that declare the capability (only those are passed). */
export interface RuntimeConfig {
  portMappings?: PortMappingArg[];
  [k: string]: unknown;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';

export interface Invocation {
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifName?: string;
  pod?: PodRef;
  pluginDirs: readonly string[];
}

export function cniArgs(pod: PodRef): string {
  return [
    'IgnoreUnknown=1',
    `K8S_POD_NAMESPACE=${pod.namespace}`,
    `K8S_POD_NAME=${pod.name}`,
    `K8S_POD_INFRA_CONTAINER_ID=${pod.id}`,
    `K8S_POD_UID=${pod.uid}`,
  ].join(';');
}

/** The environment of one plugin call (CNI spec: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH). */
export function pluginEnv(inv: Invocation): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { CNI_COMMAND: inv.command, CNI_PATH: inv.pluginDirs.join(':'), PATH: process.env.PATH };
  if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifName !== undefined) env.CNI_IFNAME = inv.ifName;
  if (inv.pod) env.CNI_ARGS = cniArgs(inv.pod);
  return env;
}

/** The stdin config of one plugin in a list: name + cniVersion injected, runtimeConfig filtered by capabilities, prevResult. */
export function pluginStdin(list: NetworkConfigList, plugin: PluginConf, rc: RuntimeConfig, prevResult?: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion, ...extra };
  delete conf.capabilities;
  const caps = plugin.capabilities ?? {};
  const runtimeConfig: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rc)) if (caps[k] && v !== undefined) runtimeConfig[k] = v;
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (plugin.capabilities) conf.capabilities = plugin.capabilities;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** Finds a plugin binary in the plugin dirs. */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  for (const d of dirs) {
    const p = path.join(d, type);
    try {
      await fs.access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw notFound(`CNI plugin ${JSON.stringify(type)} not found in ${dirs.join(', ')}`);
}

/** Runs one plugin; returns its parsed stdout (or undefined when empty). Errors carry the plugin's msg/details. */
export async function execPlugin(type: string, inv: Invocation, stdin: unknown, timeoutMs: number): Promise<unknown> {
  const bin = await findPlugin(type, inv.pluginDirs);
  let res;
  try {
    res = await run(bin, [], { env: pluginEnv(inv), input: JSON.stringify(stdin), timeoutMs, allowFailure: true });
  } catch (e) {
    if (isCorralError(e, 'DeadlineExceeded')) throw deadlineExceeded(`CNI plugin ${type} ${inv.command} timed out after ${timeoutMs} ms`);
    throw e;
  }
  const out = res.stdout.trim();
  if (res.code !== 0) {
    let msg = res.stderr.trim() || out || `exit ${res.signal ?? res.code}`;
    try {
      const err = JSON.parse(out) as { code?: number; msg?: string; details?: string };
      if (err.msg) msg = err.details ? `${err.msg}: ${err.details}` : err.msg;
    } catch {
      /* not JSON */
    }
    throw internal(`CNI plugin ${type} ${inv.command} failed: ${msg}`);
  }
  if (!out) return undefined;
  try {
    return JSON.parse(out);
  } catch {
    throw internal(`CNI plugin ${type} ${inv.command} printed invalid JSON: ${out.slice(0, 200)}`);
  }
}
