import { storeResources } from '../../src/container/resources';
import type { ContainerRecord } from '../../src/container/types';

/** A container record with harmless defaults. */
export function record(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    version: 1,
    id: 'a'.repeat(64),
    sandboxId: 'p'.repeat(64),
    podName: 'pod',
    podNamespace: 'ns',
    config: {
      metadata: { name: 'c', attempt: 0 }, image: 'busybox', imageAnnotations: {}, command: [], args: [], workingDir: '', mounts: [], devices: [],
      labels: {}, annotations: {}, logPath: '', stdin: false, stdinOnce: false, tty: false, pidMode: 'container', pidTargetId: '', stopSignal: '',
    },
    configHash: 'h',
    imageId: 'sha256:1',
    handler: 'runc',
    logPath: '',
    paths: { dir: '/d', upper: '/d/u', work: '/d/w', volumes: '/d/v', bundle: '/b', rootfs: '/b/rootfs' },
    ownPidNamespace: true,
    cgroupsPath: '/x/corral-a',
    state: 'created',
    createdAtNs: '1',
    startedAtNs: '0',
    finishedAtNs: '0',
    exitCode: 0,
    reason: '',
    message: '',
    pid: 10,
    user: { uid: 0, gid: 0, supplementalGroups: [0] },
    stopSignal: 'SIGTERM',
    resources: storeResources(undefined),
    ...over,
  };
}
