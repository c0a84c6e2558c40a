import { constants, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { failedPrecondition, internal } from '../../core/errors';
import type { Logger } from '../../log/logger';
import type { AttachRequest, StreamIO, TerminalSize } from '../backend';
import { defaultHelperPath, ended, killChild, spawnHelper } from './helper';
import type { LookupContainer } from './types';

export interface ContainerAttachOptions {
  lookupContainer: LookupContainer;
  log: Logger;
  helperPath?: string;
}

/** conmon accepts window sizes up to 1000x1000 (ctrl.c); larger ones are clamped, not dropped. */
export function resizeMessage(s: TerminalSize): string {
  const clamp = (n: number) => Math.max(0, Math.min(1000, Math.floor(n)));
  return `1 ${clamp(s.height)} ${clamp(s.width)}\n`;
}

/**
 * Attach to a running container's stdio through conmon's attach socket (a SOCK_SEQPACKET socket, so the
 * corral-io helper connects it) and its `ctl` fifo for window sizes. Detaching kills only the helper.
 * Session end follows cri-o: the container exiting ends it; the client's stdin ending ends it too for a
 * container without stdin_once and tty (with stdin_once conmon closes the container's stdin instead, and
 * the session lasts until the container's output ends).
 */
export class ContainerAttachBackend {
  private readonly helper: string;

  constructor(private readonly o: ContainerAttachOptions) {
    this.helper = o.helperPath ?? defaultHelperPath();
  }

  async attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void> {
    const c = await this.o.lookupContainer(req.containerId);
    if (!c.running) throw failedPrecondition(`container ${c.id} is not running`);
    if (signal.aborted) return;
    const flags = [io.stdin ? '--stdin' : '', io.stdout ? '--stdout' : '', io.stderr ? '--stderr' : ''].filter(Boolean);
    const h = spawnHelper(this.helper, ['attach', ...flags, c.attachSocket], [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'], { captureStderr: true });
    const child = h.child;
    const stdout = child.stdout as Readable;
    const stderr = child.stdio[3] as Readable;
    if (io.stdout) stdout.pipe(io.stdout, { end: false });
    else stdout.resume();
    if (io.stderr) stderr.pipe(io.stderr, { end: false });
    else stderr.resume();

    let detached = false;
    const detach = () => {
      detached = true;
      killChild(child, 'SIGKILL'); // only our helper: conmon and the container go on
    };
    signal.addEventListener('abort', detach, { once: true });
    const onStdinEnd = () => {
      if (!c.stdinOnce && !c.tty) detach();
    };
    if (io.stdin && child.stdin) {
      child.stdin.on('error', () => {});
      io.stdin.pipe(child.stdin);
      io.stdin.once('end', onStdinEnd);
    }
    const resizer = c.tty ? new CtlResizer(c.ctlFifo, this.o.log, io) : undefined;
    try {
      const code = await h.exited;
      await Promise.all([ended(stdout), ended(stderr)]);
      if (code !== 0 && !detached) throw internal(`attach to container ${c.id} failed: ${h.stderrTail() || `helper exited ${code}`}`);
      const note = h.stderrTail();
      if (note) this.o.log.warn('attach session', { container: c.id, note });
    } finally {
      signal.removeEventListener('abort', detach);
      io.stdin?.off('end', onStdinEnd);
      if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
      await resizer?.close();
    }
  }
}

/** Writes the session's window sizes to conmon's ctl fifo, one at a time, latest first. */
class CtlResizer {
  private fh?: Promise<fs.FileHandle | undefined>;
  private chain: Promise<void> = Promise.resolve();
  private readonly onResize = (s: TerminalSize) => this.send(s);

  constructor(private readonly fifo: string, private readonly log: Logger, private readonly io: StreamIO) {
    if (io.resize.latest) this.send(io.resize.latest);
    io.resize.on('resize', this.onResize);
  }

  private send(s: TerminalSize): void {
    this.chain = this.chain.then(async () => {
      // Non-blocking open: without conmon reading the fifo this fails instead of hanging.
      this.fh ??= fs.open(this.fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch((e: Error) => {
        this.log.debug('cannot open conmon ctl fifo', { error: e.message });
        return undefined;
      });
      const fh = await this.fh;
      await fh?.write(resizeMessage(s)).catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    this.io.resize.off('resize', this.onResize);
    await this.chain;
    await (await this.fh)?.close().catch(() => undefined);
  }
}

