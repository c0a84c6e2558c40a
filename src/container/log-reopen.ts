import { constants, promises as fs, watch } from 'node:fs';
import * as path from 'node:path';
import { deadlineExceeded, failedPrecondition } from '../core/errors';

/** conmon's control message "reopen the log file" (type 2), as cri-o writes it. */
export const REOPEN_LOG_MESSAGE = '2 0 0\n';

async function exists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `file` exists; rejects after timeoutMs. Watches its directory instead of polling. */
export async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  if (await exists(file)) return;
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (e?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      w.close();
      if (e) reject(e);
      else resolve();
    };
    const w = watch(path.dirname(file), (_ev, name) => {
      if (!name || name.toString() === path.basename(file)) void exists(file).then((ok) => ok && finish());
    });
    w.on('error', (e) => finish(e));
    const timer = setTimeout(() => finish(deadlineExceeded(`conmon did not reopen ${file} within ${timeoutMs} ms`)), timeoutMs);
    // The file may have appeared between the first check and the watch.
    void exists(file).then((ok) => ok && finish());
  });
}

/**
 * Asks conmon to reopen the container's log (after kubelet rotated it) through the `ctl` fifo in the bundle,
 * and waits until the new file exists. The fifo is opened non-blocking: without conmon reading it the open
 * fails instead of hanging.
 */
export async function reopenContainerLog(bundle: string, logPath: string, timeoutMs = 10_000): Promise<void> {
  const ctl = path.join(bundle, 'ctl');
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(ctl, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw failedPrecondition(`cannot reach the container's monitor to reopen its log: ${(e as Error).message}`, e);
  }
  try {
    await fh.write(REOPEN_LOG_MESSAGE);
  } finally {
    await fh.close();
  }
  await waitForFile(logPath, timeoutMs);
}
