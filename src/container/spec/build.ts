import { invalidArgument } from '../../core/errors';
import { withCapabilities, withGrantableCapabilities } from './capabilities';
import { baseContainerSpec } from './defaults';
import { withDevices } from './devices';
import type { ContainerSpecInput, ContainerSpecResult, HostContext } from './input';
import { withAnnotations, withCgroupsPath, withMaskedPaths, withNamespaces, withNoNewPrivileges, withRoot, withSysctls } from './linux';
import { withMounts } from './mounts';
import { applyOpts, type SpecContext, type SpecOpt } from './opts';
import { withProcess } from './process';
import { withOomScoreAdj, withResources, withRlimitClamp } from './resources';
import { withMacLabels, withSeccomp } from './seccomp';
import { withUser } from './user';

/** Privileged: only in a privileged pod; no /proc or /sys masking, writable /sys and cgroupfs. */
export const withPrivileged: SpecOpt = (s, ctx) => {
  if (!ctx.input.security?.privileged) return;
  if (!ctx.input.pod.privileged) throw invalidArgument('a privileged container is not allowed in a non-privileged pod');
  s.linux.maskedPaths = [];
  s.linux.readonlyPaths = [];
  for (const m of s.mounts) {
    if ((m.destination === '/sys' || m.destination === '/sys/fs/cgroup') && m.type !== 'bind') {
      m.options = (m.options ?? []).map((o) => (o === 'ro' ? 'rw' : o));
    }
  }
};

/** The options of a workload container, in the order they must run (seccomp reads the final capability set). */
export function containerSpecOpts(): SpecOpt[] {
  return [
    withProcess,
    withRoot,
    withUser,
    withNamespaces,
    withCgroupsPath,
    withSysctls,
    withMounts,
    withDevices,
    withResources,
    withOomScoreAdj,
    withRlimitClamp,
    withCapabilities,
    withGrantableCapabilities,
    withNoNewPrivileges,
    withMaskedPaths,
    withPrivileged,
    withSeccomp,
    withMacLabels,
    withAnnotations,
  ];
}

/**
 * Generates the OCI runtime spec of a container from the image config and the (converted) CRI ContainerConfig.
 * Reads the image's /etc/passwd and /etc/group, stats mount and device host paths, reads a Localhost seccomp
 * profile; throws InvalidArgument for bad input. `extraOpts` run last (tests, runtime-specific tweaks).
 */
export function buildContainerSpec(input: ContainerSpecInput, host: HostContext, extraOpts: readonly SpecOpt[] = []): ContainerSpecResult {
  if (!input.id) throw invalidArgument('container id is empty');
  if (!input.name) throw invalidArgument('container name is empty');
  if (!input.rootfsPath) throw invalidArgument('container rootfs path is empty');
  const ctx: SpecContext = {
    input,
    host,
    user: { uid: 0, gid: 0, supplementalGroups: [] },
    stopSignal: 'SIGTERM',
    imageVolumes: [],
    warnings: [],
  };
  const spec = applyOpts(baseContainerSpec(), ctx, [...containerSpecOpts(), ...extraOpts]);
  return { spec, user: ctx.user, stopSignal: ctx.stopSignal, imageVolumes: ctx.imageVolumes, warnings: ctx.warnings };
}
