import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REOPEN_LOG_MESSAGE, reopenContainerLog, waitForFile } from '../../src/container/log-reopen';
import { isCorralError } from '../../src/core/errors';
import { run } from '../../src/sys/exec';

test('reopenContainerLog writes the reopen message to the ctl fifo and waits for the new log file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-reopen-'));
  try {
    const ctl = path.join(dir, 'ctl');
    await run('mkfifo', [ctl]);
    const reader = await fs.open(ctl, constants.O_RDONLY | constants.O_NONBLOCK);
    const log = path.join(dir, 'ctr.log');
    const done = reopenContainerLog(dir, log, 5000);
    // Play conmon: read the message, then create the new log file.
    let got = '';
    for (let i = 0; i < 200 && !got.includes('\n'); i++) {
      const buf = Buffer.alloc(64);
      const { bytesRead } = await reader.read(buf, 0, 64, null).catch(() => ({ bytesRead: 0 }));
      got += buf.subarray(0, bytesRead).toString();
      if (!got) await new Promise((r) => setImmediate(r));
    }
    assert.equal(got, REOPEN_LOG_MESSAGE);
    await fs.writeFile(log, '');
    await done;
    await reader.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reopenContainerLog without a monitor reading the fifo fails at once instead of hanging', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-reopen-'));
  try {
    await run('mkfifo', [path.join(dir, 'ctl')]);
    await assert.rejects(reopenContainerLog(dir, path.join(dir, 'x.log'), 1000), (e) => isCorralError(e, 'FailedPrecondition'));
    await assert.rejects(reopenContainerLog(path.join(dir, 'none'), path.join(dir, 'x.log'), 1000), (e) => isCorralError(e, 'FailedPrecondition'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('waitForFile: resolves when the file appears, DeadlineExceeded otherwise', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-wait-'));
  try {
    const f = path.join(dir, 'f');
    const p = waitForFile(f, 5000);
    await fs.writeFile(f, 'x');
    await p;
    await assert.rejects(waitForFile(path.join(dir, 'never'), 100), (e) => isCorralError(e, 'DeadlineExceeded'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
