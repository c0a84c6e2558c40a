import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CorralError } from '../../src/core/errors';
import { launchConmon, type ConmonLaunch } from '../../src/runtime/conmon';

function launchIn(dir: string, conmon: string): ConmonLaunch {
  return {
    conmon,
    runtimePath: '/bin/false',
    runtimeRoot: dir,
    id: 'c1',
    name: 'c1',
    bundle: dir,
    logPath: path.join(dir, 'c1.log'),
    exitDir: dir,
    persistDir: dir,
    socketDir: dir,
    containerPidFile: path.join(dir, 'pid'),
    conmonPidFile: path.join(dir, 'conmon.pid'),
    timeoutMs: 20_000,
  };
}

// Regression: the start byte left unread in a dead conmon's socket made Node emit ECONNRESET on our
// end of the start pipe with nobody listening, which crashed the daemon (found by the e2e fuzz).
test('a conmon that dies without reading the start byte fails the create, not the daemon', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corral-conmon-'));
  try {
    const fake = path.join(dir, 'fake-conmon');
    // Waits until the start byte is queued on fd 4, then exits without reading it.
    writeFileSync(fake, `#!/usr/bin/env python3\nimport select, sys\nselect.select([4], [], [])\nsys.stderr.write("fake conmon gave up\\n")\nsys.exit(3)\n`);
    chmodSync(fake, 0o755);
    for (let i = 0; i < 5; i++) {
      const err = await launchConmon(launchIn(dir, fake)).then(
        () => assert.fail('launch should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CorralError, `a domain error (${String(err)})`);
      assert.match(err.message, /exited 3 before reporting a pid: fake conmon gave up/);
    }
    // Give a late 'error' event its turn: had it no listener, this process would have died by now.
    await new Promise((r) => setImmediate(r));
    assert.ok(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
