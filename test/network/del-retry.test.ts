import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CniManager } from '../../src/network/cni';
import { nullLogger } from '../../src/log/logger';
import { waitFor } from '../../src/core/wait';

// A plugin that answers ADD with a fixed result and fails DEL while a marker file exists.
const FLAKY = `#!/bin/sh
case "$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.250.0.2/24","interface":0}]}' ;;
  DEL) if [ -e "$(dirname "$0")/fail-del" ]; then echo '{"cniVersion":"1.0.0","code":11,"msg":"DEL refused for the test"}'; exit 1; fi ;;
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
`;

test('a failing CNI DEL never blocks teardown: deferred, retried in the background from the cache until it succeeds', async () => {
  const dir = mkdtempSync('/tmp/corral-cnidel-');
  const conf = path.join(dir, 'net.d');
  const plugins = path.join(dir, 'plugins');
  mkdirSync(conf);
  mkdirSync(plugins);
  writeFileSync(path.join(plugins, 'flaky'), FLAKY, { mode: 0o755 });
  // The manager also sets up lo with the loopback plugin; a stand-in keeps the test free of real namespaces.
  writeFileSync(path.join(plugins, 'loopback'), `#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","interfaces":[{"name":"lo"}]}'\nexit 0\n`, { mode: 0o755 });
  writeFileSync(path.join(conf, '10-flaky.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'flaky', plugins: [{ type: 'flaky' }] }));
  const cni = new CniManager(() => ({ conf_dirs: [conf], plugin_dirs: [plugins], timeout_seconds: 10 }), path.join(dir, 'root'), nullLogger, { delRetryBaseMs: 50, delRetryMaxMs: 200 });
  try {
    await cni.start();
    const id = 'a'.repeat(64);
    await cni.setUp({ namespace: 'ns', name: 'p', uid: 'u', id }, path.join(dir, 'netns'), {});
    const cache = path.join(dir, 'root', 'cni-results', `${id}.json`);
    assert.ok(existsSync(cache), 'ADD result cached');

    writeFileSync(path.join(plugins, 'fail-del'), '');
    assert.equal(await cni.release(id), false, 'DEL deferred, release returned at once');
    assert.ok(cni.delPending(id));
    assert.ok(existsSync(cache), 'cache kept for the retry');
    // Still failing: retries keep going and the cache stays.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(existsSync(cache));
    rmSync(path.join(plugins, 'fail-del'));
    await waitFor(() => !existsSync(cache) && !cni.delPending(id), { timeoutMs: 5000, what: 'background DEL to succeed' });
    assert.equal(await cni.release(id), true, 'a later release is a no-op success');
  } finally {
    cni.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
