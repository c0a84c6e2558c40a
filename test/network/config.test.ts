import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configFileNames, loadFirstNetwork, parseNetworkConfig, versionAtLeast } from '../../src/network/config';
import { cniArgs, pluginEnv, pluginStdin } from '../../src/network/invoke';
import { resultIps } from '../../src/network/result';

test('config file names: only .conf/.conflist/.json, lexical order, no dotfiles', () => {
  assert.deepEqual(configFileNames(['99-b.conflist', '10-a.conf', 'README', '.hidden.conf', '05-x.json', '20-y.conf.bak']), ['05-x.json', '10-a.conf', '99-b.conflist']);
});

test('parse: .conf becomes a list of one; conflist needs plugins; type required', () => {
  const one = parseNetworkConfig(JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'bridge' }), '/x/10.conf');
  assert.equal(one.plugins.length, 1);
  assert.equal(one.plugins[0].type, 'bridge');
  assert.throws(() => parseNetworkConfig(JSON.stringify({ name: 'n', plugins: [] }), '/x/a.conflist'), /no plugins/);
  assert.throws(() => parseNetworkConfig(JSON.stringify({ name: 'n', plugins: [{}] }), '/x/a.conflist'), /no type/);
  assert.throws(() => parseNetworkConfig(JSON.stringify({ plugins: [{ type: 'x' }] }), '/x/a.conflist'), /name/);
  assert.throws(() => parseNetworkConfig('{not json', '/x/a.conflist'));
  assert.equal(parseNetworkConfig(JSON.stringify({ name: 'n', type: 'x' }), '/x/a.conf').cniVersion, '0.2.0');
});

test('loadFirstNetwork: lexically first valid file wins; invalid ones are reported and skipped', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-cni-'));
  try {
    await fs.writeFile(path.join(dir, '00-broken.conflist'), '{');
    await fs.writeFile(path.join(dir, '10-good.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'good', plugins: [{ type: 'bridge' }] }));
    await fs.writeFile(path.join(dir, '20-later.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'later', type: 'ptp' }));
    const { config, problems } = await loadFirstNetwork(['/nonexistent-dir', dir]);
    assert.equal(config?.name, 'good');
    assert.equal(problems.length, 1);
    assert.match(problems[0], /00-broken/);
    const none = await loadFirstNetwork(['/nonexistent-dir']);
    assert.equal(none.config, undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('versionAtLeast', () => {
  assert.ok(versionAtLeast('1.0.0', '0.4.0'));
  assert.ok(versionAtLeast('1.1.0', '1.1.0'));
  assert.ok(!versionAtLeast('1.0.0', '1.1.0'));
  assert.ok(!versionAtLeast('0.3.1', '0.4.0'));
});

test('CNI env and args carry the K8S_* pod identity', () => {
  const pod = { namespace: 'ns', name: 'web', uid: 'u-1', id: 'abc' };
  assert.equal(cniArgs(pod), 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1');
  const env = pluginEnv({ command: 'ADD', containerId: 'abc', netns: '/run/x/netns/abc', ifName: 'eth0', pod, pluginDirs: ['/a', '/b'] });
  assert.equal(env.CNI_COMMAND, 'ADD');
  assert.equal(env.CNI_CONTAINERID, 'abc');
  assert.equal(env.CNI_NETNS, '/run/x/netns/abc');
  assert.equal(env.CNI_IFNAME, 'eth0');
  assert.equal(env.CNI_PATH, '/a:/b');
  assert.match(env.CNI_ARGS!, /K8S_POD_UID=u-1/);
  const status = pluginEnv({ command: 'STATUS', pluginDirs: ['/a'] });
  assert.equal(status.CNI_CONTAINERID, undefined);
});

test('plugin stdin: name/cniVersion injected, runtimeConfig only for declared capabilities, prevResult passed', () => {
  const list = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }] }), '/x/a.conflist');
  const rc = { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' as const }] };
  const b = pluginStdin(list, list.plugins[0], rc);
  assert.equal(b.name, 'net');
  assert.equal(b.cniVersion, '1.0.0');
  assert.equal(b.runtimeConfig, undefined);
  assert.equal(b.prevResult, undefined);
  const prev = { ips: [{ address: '10.0.0.2/24' }] };
  const p = pluginStdin(list, list.plugins[1], rc, prev);
  assert.deepEqual(p.runtimeConfig, { portMappings: rc.portMappings });
  assert.deepEqual(p.prevResult, prev);
  const empty = pluginStdin(list, list.plugins[1], { portMappings: undefined });
  assert.equal(empty.runtimeConfig, undefined);
});

test('result IPs: sandbox interfaces only, IPv4 first, legacy ip4', () => {
  const r = {
    interfaces: [{ name: 'cni0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }],
    ips: [
      { address: 'fd00::5/64', interface: 2 },
      { address: '10.1.0.5/24', interface: 2, gateway: '10.1.0.1' },
      { address: '10.1.0.1/24', interface: 0 },
    ],
  };
  assert.deepEqual(resultIps(r), ['10.1.0.5', 'fd00::5']);
  assert.deepEqual(resultIps({ ip4: { ip: '10.2.0.3/16' } }), ['10.2.0.3']);
  assert.deepEqual(resultIps(undefined), []);
});
