import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { run } from '../../../src/sys/exec';
import { CAPABILITIES } from '../../../src/sys/caps';
import { existingCgroupDirs, removeCgroup } from '../../../src/sys/cgroups';
import { buildContainerSpec, detectHostContext, ociSpecJson } from '../../../src/container/spec';
import type { ContainerSpecInput } from '../../../src/container/spec';
import { GROUP, PASSWD, tempDir } from './fixture';

const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';
const CAN_RUN = process.getuid?.() === 0 && existsSync(RUNC) && existsSync(BUSYBOX);

/** A busybox rootfs with the applets the test uses and the fixture passwd/group. */
function makeRootfs(root: string): void {
  for (const d of ['bin', 'etc', 'proc', 'dev', 'sys', 'tmp']) mkdirSync(path.join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
  for (const applet of ['sh', 'id', 'cat', 'grep', 'unshare', 'true']) symlinkSync('busybox', path.join(root, 'bin', applet));
  writeFileSync(path.join(root, 'etc/passwd'), PASSWD);
  writeFileSync(path.join(root, 'etc/group'), GROUP);
}

test('runc runs generated specs: user, groups, capabilities, clamped oom_score_adj, RuntimeDefault seccomp', { skip: !CAN_RUN && 'needs root, runc and busybox-static' }, async (t) => {
  const { dir, cleanup } = tempDir('corral-spec-runc-');
  const stateRoot = path.join(dir, 'state');
  const parent = `corral-spec-test-${randomBytes(4).toString('hex')}`;
  const started: string[] = [];
  t.after(async () => {
    for (const id of started) await run(RUNC, ['--root', stateRoot, 'delete', '--force', id], { allowFailure: true, timeoutMs: 10_000 });
    await removeCgroup(`/${parent}`);
    cleanup();
  });
  const rootfs = path.join(dir, 'rootfs');
  makeRootfs(rootfs);
  const host = detectHostContext({ cgroupManager: 'cgroupfs', restrictOomScoreAdj: 'auto' });

  async function runContainer(over: Partial<ContainerSpecInput>, script: string) {
    const id = `spec-${randomBytes(4).toString('hex')}`;
    const bundle = path.join(dir, id);
    mkdirSync(bundle);
    const input: ContainerSpecInput = {
      id,
      name: id,
      image: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['true'], Env: ['PATH=/bin'] },
      imageRoot: rootfs,
      rootfsPath: rootfs,
      args: [script],
      pod: { id: 'pod', hostname: 'spec-test', namespaces: { pidMode: 'container' }, cgroupParent: `/${parent}` },
      ...over,
    };
    // Fresh network/IPC/UTS namespaces instead of a pod's pinned ones.
    const fresh = (s: { linux: { namespaces: { type: string }[] } }) => {
      s.linux.namespaces.push({ type: 'network' }, { type: 'ipc' }, { type: 'uts' });
    };
    const result = buildContainerSpec(input, host, [fresh as never]);
    writeFileSync(path.join(bundle, 'config.json'), ociSpecJson(result.spec));
    started.push(id);
    const r = await run(RUNC, ['--root', stateRoot, 'run', '--bundle', bundle, id], { timeoutMs: 30_000, allowFailure: true });
    assert.equal(r.code, 0, `runc run failed: ${r.stderr}`);
    // runc run removes a container that exited; its cgroup must be gone.
    assert.deepEqual(await existingCgroupDirs(result.spec.linux.cgroupsPath!), []);
    return { out: r.stdout, result };
  }

  // Root with only CHOWN and KILL, a negative oom_score_adj the daemon may not be able to set, default seccomp.
  const root = await runContainer(
    {
      resources: { oomScoreAdj: -998n, memoryLimitInBytes: 64n << 20n, cpuShares: 256n },
      security: { capabilities: { drop: ['ALL'], add: ['CHOWN', 'KILL'] }, seccomp: { kind: 'RuntimeDefault' } },
    },
    'id; grep CapEff /proc/self/status; echo oom=$(cat /proc/self/oom_score_adj); unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied',
  );
  assert.match(root.out, /^uid=0\(root\) gid=0\(root\)/m);
  assert.match(root.out, /^CapEff:\s+0000000000000021$/m, root.out);
  const wantOom = host.restrictOomScoreAdj ? Math.max(-998, host.daemonCaps.ownOomScoreAdj) : -998;
  assert.match(root.out, new RegExp(`^oom=${wantOom}$`, 'm'), root.out);
  // A user namespace needs no capability: only the seccomp profile (clone/unshare without CAP_SYS_ADMIN) refuses it.
  assert.match(root.out, /^unshare=denied$/m, root.out);

  // A named user from the image with its /etc/group memberships and a request supplemental group.
  const app = await runContainer(
    { security: { runAsUsername: 'app', supplementalGroups: [3000n], noNewPrivs: true } },
    'id -u; id -g; id -G; grep CapEff /proc/self/status',
  );
  const [uid, gid, groups] = app.out.trim().split('\n');
  assert.equal(uid, '1000');
  assert.equal(gid, '1000');
  assert.deepEqual(groups.split(' ').map(Number).sort((a, b) => a - b), [10, 29, 1000, 3000]);
  assert.deepEqual(app.result.user, { uid: 1000, gid: 1000, supplementalGroups: [1000, 10, 29, 3000] });
  assert.match(app.out, /^CapEff:\s+0000000000000000$/m, 'a non-root process keeps no effective capabilities');

  // Privileged: every capability the daemon holds (none it lacks, or runc would fail), host devices, rw /sys.
  const priv = await runContainer(
    { security: { privileged: true, seccomp: { kind: 'RuntimeDefault' } }, pod: { id: 'pod', hostname: 'p', namespaces: { pidMode: 'container' }, cgroupParent: `/${parent}`, privileged: true } },
    'grep CapEff /proc/self/status; grep " /sys " /proc/self/mounts',
  );
  let mask = 0n;
  CAPABILITIES.forEach((c, bit) => {
    if (host.daemonCaps.effective.has(c)) mask |= 1n << BigInt(bit);
  });
  assert.match(priv.out, new RegExp(`^CapEff:\\s+${mask.toString(16).padStart(16, '0')}$`, 'm'), priv.out);
  assert.match(priv.out, /^sysfs \/sys sysfs rw,/m, priv.out);

  // Control: without seccomp the same unshare works (so the denial above came from the profile).
  const unconfined = await runContainer({}, 'unshare -U true && echo unshare=ok || echo unshare=denied');
  assert.match(unconfined.out, /^unshare=ok$/m, unconfined.out);
});
