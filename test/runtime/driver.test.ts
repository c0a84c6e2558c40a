import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeDriver } from '../../src/runtime/driver';
import { buildInfraSpec, INFRA_ROOTFS_DIRS } from '../../src/oci/infra';
import { nullLogger } from '../../src/log/logger';
import { newId } from '../../src/core/ids';
import { existingCgroupDirs, removeCgroup } from '../../src/sys/cgroups';
import { pinNamespaces, unpinNamespaces } from '../../src/sys/netns';
import { mountPoints } from '../../src/sys/mount';

const ROOT_OK = process.getuid?.() === 0 && existsSync('/usr/bin/conmon') && existsSync('/usr/sbin/runc');

async function setup() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-rt-'));
  const driver = new RuntimeDriver({
    conmon: '/usr/bin/conmon',
    handlers: () => ({ runc: { path: '/usr/sbin/runc', root: '', type: 'oci' } }),
    runRoot: dir,
    cgroupManager: () => 'cgroupfs',
    log: nullLogger,
  });
  await driver.init();
  const rootfs = path.join(dir, 'pause-rootfs');
  for (const d of INFRA_ROOTFS_DIRS) await fs.mkdir(path.join(rootfs, d), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'catatonit'), '');
  return { dir, driver, rootfs };
}

test('driver: create, start, state, kill, exit event, delete of a catatonit infra container', { skip: !ROOT_OK }, async () => {
  const { dir, driver, rootfs } = await setup();
  const id = newId();
  const bundle = path.join(dir, 'b', id);
  const cg = `/corral-test-rt/corral-${id}`;
  const ns = { net: path.join(dir, 'netns', id), ipc: path.join(dir, 'ipcns', id), uts: path.join(dir, 'utsns', id) };
  try {
    await pinNamespaces(ns);
    await fs.mkdir(bundle, { recursive: true });
    const spec = buildInfraSpec({
      rootfs, catatonit: '/usr/bin/catatonit', hostname: 'rt-test', netns: ns.net, ipcns: ns.ipc, utsns: ns.uts,
      pid: 'pod', cgroupsPath: cg, sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' }, uid: 65535, gid: 65535,
      readonlyRootfs: true, annotations: {},
    });
    await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const t0 = performance.now();
    // A non-ASCII name and log path (pod names reach conmon's argv): conmon used to exit 1 on them under the C locale.
    const logPath = path.join(bundle, 'lögs', 'infra-ñ€.log');
    const { pid } = await driver.create({ id, name: 'pöd-ñ€-infra', handler: 'runc', bundle, logPath, persistDir: bundle });
    assert.ok(existsSync(logPath), 'conmon opened the non-ASCII log path');
    assert.ok(pid > 0);
    const st = await driver.state(id, 'runc');
    assert.equal(st?.status, 'created');
    await driver.start(id, 'runc');
    const t1 = performance.now();
    console.log(`create+start ${Math.round(t1 - t0)} ms`);
    assert.equal((await driver.state(id, 'runc'))?.status, 'running');
    const comm = (await fs.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
    assert.equal(comm, 'catatonit');
    const hostNet = await fs.readlink('/proc/self/ns/net');
    assert.notEqual(await fs.readlink(`/proc/${pid}/ns/net`), hostNet);
    assert.equal((await fs.readFile(`/proc/${pid}/status`, 'utf8')).match(/^Uid:\s+(\d+)/m)?.[1], '65535');
    assert.ok((await existingCgroupDirs(cg)).length > 0, 'cgroup created');
    assert.equal(await driver.exitStatus(id), undefined);
    const exited = driver.waitExit(id, 10_000);
    await driver.kill(id, 'runc', 'KILL');
    const ex = await exited;
    assert.equal(ex.exitCode, 137);
    await driver.delete(id, 'runc', false);
    assert.equal(await driver.state(id, 'runc'), undefined);
    assert.deepEqual(await existingCgroupDirs(cg), []);
    await driver.delete(id, 'runc', true); // idempotent
  } finally {
    await driver.delete(id, 'runc', true).catch(() => undefined);
    driver.close();
    await unpinNamespaces([ns.net, ns.ipc, ns.uts]);
    await removeCgroup('/corral-test-rt');
    const mounts = await mountPoints();
    assert.ok(![...mounts].some((m) => m.startsWith(dir)), 'no mounts left');
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('driver: a runc create failure reports the message and leaves nothing', { skip: !ROOT_OK }, async () => {
  const { dir, driver, rootfs } = await setup();
  const id = newId();
  const bundle = path.join(dir, 'b', id);
  try {
    await fs.mkdir(bundle, { recursive: true });
    const spec = buildInfraSpec({
      rootfs, catatonit: '/nonexistent/catatonit', hostname: 'x', pid: 'pod', cgroupsPath: `/corral-test-rt/corral-${id}`,
      sysctls: {}, uid: 0, gid: 0, readonlyRootfs: true, annotations: {},
    });
    await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    await assert.rejects(driver.create({ id, handler: 'runc', bundle, logPath: path.join(bundle, 'infra.log'), persistDir: bundle }), /create failed|catatonit/);
    await assert.rejects(driver.create({ id, handler: 'nope', bundle, logPath: path.join(bundle, 'infra.log'), persistDir: bundle }), /unknown runtime handler/);
  } finally {
    await driver.delete(id, 'runc', true).catch(() => undefined);
    driver.close();
    await removeCgroup(`/corral-test-rt/corral-${id}`);
    await removeCgroup('/corral-test-rt');
    await fs.rm(dir, { recursive: true, force: true });
  }
});
