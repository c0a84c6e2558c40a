import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CniManager } from '../../src/network/cni';
import { nullLogger } from '../../src/log/logger';
import { waitFor } from '../../src/core/wait';

/** A fake plugin that logs its env + stdin and answers with a fixed result: exercises the protocol without root. */
const FAKE = `#!/bin/sh
in=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS|$in" >> "$(dirname "$0")/calls.log"
if [ "$CNI_COMMAND" = ADD ]; then
  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"x"}],"ips":[{"address":"10.9.0.7/24","interface":0}]}'
fi
`;

async function setup() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-cnim-'));
  const conf = path.join(dir, 'net.d');
  const plugins = path.join(dir, 'bin');
  await fs.mkdir(plugins, { recursive: true });
  for (const n of ['fake-a', 'fake-b', 'loopback']) await fs.writeFile(path.join(plugins, n), FAKE, { mode: 0o755 });
  const settings = { conf_dirs: [conf], plugin_dirs: [plugins], timeout_seconds: 5 };
  const m = new CniManager(() => settings, path.join(dir, 'root'), nullLogger);
  return { dir, conf, plugins, m };
}

test('CNI manager: not ready until a config appears in a watched (even missing) dir; ADD/DEL protocol', async () => {
  const { dir, conf, plugins, m } = await setup();
  try {
    await m.start();
    assert.deepEqual({ ...m.networkReady(), message: '' }, { ready: false, reason: 'NetworkPluginNotReady', message: '' });
    await fs.mkdir(conf);
    await fs.writeFile(path.join(conf, '10-x.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'fakenet', plugins: [{ type: 'fake-a' }, { type: 'fake-b', capabilities: { portMappings: true } }] }));
    await waitFor(() => m.networkReady().ready, { timeoutMs: 8000, what: 'config pickup' });

    const pod = { namespace: 'ns', name: 'p', uid: 'u', id: 'sb1' };
    const res = await m.setUp(pod, '/run/test/netns/sb1', { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] });
    assert.deepEqual(res.ips, ['10.9.0.7']);
    assert.equal(res.network, 'fakenet');
    const cached = await m.attachment('sb1');
    assert.deepEqual(cached?.result, res.result);

    await m.tearDown('sb1');
    await m.tearDown('sb1'); // idempotent: no cache, no calls
    assert.equal(await m.attachment('sb1'), undefined);
    const calls = (await fs.readFile(path.join(plugins, 'calls.log'), 'utf8')).trim().split('\n');
    const cmds = calls.map((c) => c.split('|')[0]);
    // lo comes up beside the chain; DEL runs the chain in reverse, with the lost netns passed as "".
    assert.ok(cmds.includes('ADD sb1 lo /run/test/netns/sb1'));
    const main = cmds.filter((c) => !c.includes(' lo '));
    assert.deepEqual(main, ['ADD sb1 eth0 /run/test/netns/sb1', 'ADD sb1 eth0 /run/test/netns/sb1', 'DEL sb1 eth0 ', 'DEL sb1 eth0 ']);
    const stdins = calls.filter((c) => !c.includes(' lo ')).map((c) => JSON.parse(c.split('|')[1]));
    assert.equal(stdins[0].prevResult, undefined);
    assert.equal(stdins[0].runtimeConfig, undefined);
    assert.deepEqual(stdins[1].prevResult.ips, [{ address: '10.9.0.7/24', interface: 0 }]);
    assert.deepEqual(stdins[1].runtimeConfig.portMappings, [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }]);
    assert.equal(stdins[2].type, 'fake-b');
    assert.ok(stdins[2].prevResult, 'DEL gets the cached result');
  } finally {
    m.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
