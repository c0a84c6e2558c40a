import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CAPABILITIES } from '../../../src/sys/caps';
import type { ContainerSpecInput, HostContext } from '../../../src/container/spec';

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = 'corral-spec-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes etc/passwd and etc/group under root. */
export function writeUserDb(root: string, passwd: string | undefined, group: string | undefined): void {
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  if (passwd !== undefined) writeFileSync(path.join(root, 'etc/passwd'), passwd);
  if (group !== undefined) writeFileSync(path.join(root, 'etc/group'), group);
}

export const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'web:x:1001:1002::/srv:/bin/sh',
  '',
].join('\n');

export const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'wheel:x:10:root,app',
  'app:x:1000:app',
  'audio:x:29:app,web',
  'webgrp:x:1002:',
  'video:x:44:web',
  '',
].join('\n');

/** A host with every capability, nothing restricted. */
export function fullHost(over: Partial<HostContext> = {}): HostContext {
  return {
    cgroupManager: 'cgroupfs',
    daemonCaps: { effective: new Set(CAPABILITIES), ownOomScoreAdj: 0 },
    restrictOomScoreAdj: false,
    swapAccounting: true,
    arch: 'x64',
    ...over,
  };
}

/** A minimal valid input; imageRoot must hold etc/passwd for named users. */
export function baseInput(imageRoot: string, over: Partial<ContainerSpecInput> = {}): ContainerSpecInput {
  return {
    id: 'c0ffee',
    name: 'app',
    image: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], Env: ['PATH=/bin', 'LANG=C'] },
    imageRoot,
    rootfsPath: 'rootfs',
    pod: {
      id: 'pod1',
      name: 'web',
      namespace: 'default',
      uid: 'uid-1',
      hostname: 'web-0',
      namespaces: { network: '/run/netns/p1', ipc: '/run/ipcns/p1', uts: '/run/utsns/p1', pidMode: 'container' },
      cgroupParent: '/kubepods/pod1',
    },
    ...over,
  };
}
