import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { failedPrecondition } from '../core/errors';

/**
 * Makes the socket path usable: creates parent dirs; removes a stale socket left by a dead daemon;
 * refuses a path that exists and is not a socket, or a socket someone still answers on.
 */
export async function prepareSocketPath(socket: string): Promise<void> {
  await fs.mkdir(path.dirname(socket), { recursive: true, mode: 0o755 });
  let st;
  try {
    st = await fs.lstat(socket);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw failedPrecondition(`socket path ${socket} exists and is not a socket; remove it or choose another --socket`);
  if (await answers(socket)) throw failedPrecondition(`socket ${socket} is in use by another process`);
  await fs.rm(socket, { force: true });
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    const done = (v: boolean) => {
      c.destroy();
      resolve(v);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(2000, () => done(false));
  });
}

/** Socket mode 0660, owned by root: only root (and the root group) may talk to the runtime. */
export async function secureSocket(socket: string): Promise<void> {
  await fs.chmod(socket, 0o660);
  await fs.chown(socket, 0, 0);
}
