import * as net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { Logger } from '../../log/logger';
import { defaultHelperPath, ended, killChild, spawnHelper } from './helper';
import type { PodNetns } from './types';

export interface PodPortForwardOptions {
  podNetns: PodNetns;
  log: Logger;
  helperPath?: string;
}

/**
 * Port-forward into a pod's network namespace: one corral-io helper per forwarded connection enters the
 * pinned netns and dials localhost:port (Node cannot setns). Host-network pods are dialled directly.
 * Any number of connections and ports per session run side by side.
 */
export class PodPortForwardBackend {
  private readonly helper: string;

  constructor(private readonly o: PodPortForwardOptions) {
    this.helper = o.helperPath ?? defaultHelperPath();
  }

  async portForward(target: { podSandboxId: string; port: number }, stream: Duplex, signal: AbortSignal): Promise<void> {
    const netns = await this.o.podNetns(target.podSandboxId);
    if (signal.aborted) return;
    if (netns === undefined) return dialHost(target.port, stream, signal);
    const h = spawnHelper(this.helper, ['portforward', netns, String(target.port)], ['pipe', 'pipe', 'pipe'], { captureStderr: true });
    const child = h.child;
    const stop = () => killChild(child, 'SIGKILL');
    signal.addEventListener('abort', stop, { once: true });
    stream.once('close', stop);
    child.stdin!.on('error', () => {});
    stream.pipe(child.stdin!);
    const out = child.stdout as Readable;
    out.pipe(stream); // the remote's half-close reaches the client
    try {
      const code = await h.exited;
      await ended(out);
      // Exit 1: the dial failed (message on stderr); 125: the helper failed. Killed (>= 128): we ended it.
      if (code !== 0 && code < 128) throw new Error(h.stderrTail() || `port-forward helper exited ${code}`);
    } finally {
      signal.removeEventListener('abort', stop);
      stream.off('close', stop);
      stream.unpipe(child.stdin!);
    }
  }
}

/** A host-network pod's localhost is the host's: Node dials it itself (IPv4, then IPv6). */
async function dialHost(port: number, stream: Duplex, signal: AbortSignal): Promise<void> {
  const connect = (host: string) =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  let sock: net.Socket;
  try {
    sock = await connect('127.0.0.1');
  } catch (e4) {
    sock = await connect('::1').catch(() => Promise.reject(new Error(`failed to connect to localhost:${port}: ${(e4 as Error).message}`)));
  }
  await new Promise<void>((resolve) => {
    const stop = () => sock.destroy();
    signal.addEventListener('abort', stop, { once: true });
    stream.once('close', stop);
    sock.on('error', () => {});
    stream.pipe(sock);
    sock.pipe(stream);
    sock.once('close', () => {
      signal.removeEventListener('abort', stop);
      stream.off('close', stop);
      stream.unpipe(sock);
      resolve();
    });
  });
}
