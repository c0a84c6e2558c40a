import { run } from '../sys/exec';
import { internal, isCorralError, notFound } from '../core/errors';

/** One OCI runtime binary with its state root (a configured runtime handler). */
export interface OciRuntime {
  name: string;
  path: string;
  root: string;
}

/** The subset of `runc state` output corral uses. */
export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused' | string;
  bundle: string;
  created?: string;
}

const NOT_EXIST = /does not exist|not found|no such file/i;

/** Thin argv builders + invocations of the runc command line. Every call has a deadline. */
export class RuncClient {
  constructor(private readonly timeoutMs = 30_000) {}

  private args(rt: OciRuntime, sub: string[]): string[] {
    return [`--root=${rt.root}`, ...sub];
  }

  async start(rt: OciRuntime, id: string): Promise<void> {
    await run(rt.path, this.args(rt, ['start', id]), { timeoutMs: this.timeoutMs });
  }

  /** Sends a signal; `all` signals every process of the container (needed for host-PID-namespace containers). */
  async kill(rt: OciRuntime, id: string, signal: string, all = false): Promise<void> {
    const res = await run(rt.path, this.args(rt, ['kill', ...(all ? ['--all'] : []), id, signal]), {
      timeoutMs: this.timeoutMs,
      allowFailure: true,
    });
    if (res.code === 0) return;
    const msg = res.stderr.trim();
    if (NOT_EXIST.test(msg)) throw notFound(`container ${id} does not exist in ${rt.name}`);
    if (/not running|process already finished|container not running/i.test(msg)) return;
    throw internal(`${rt.path} kill ${id} ${signal}: ${msg}`);
  }

  /** Returns the runtime's view of a container, or undefined when the runtime does not know it. */
  async state(rt: OciRuntime, id: string): Promise<RuncState | undefined> {
    const res = await run(rt.path, this.args(rt, ['state', id]), { timeoutMs: this.timeoutMs, allowFailure: true });
    if (res.code !== 0) {
      if (NOT_EXIST.test(res.stderr)) return undefined;
      throw internal(`${rt.path} state ${id}: ${res.stderr.trim()}`);
    }
    return JSON.parse(res.stdout) as RuncState;
  }

  /** Deletes the container from the runtime (cgroup included). Unknown ids succeed. */
  async delete(rt: OciRuntime, id: string, force: boolean): Promise<void> {
    try {
      const res = await run(rt.path, this.args(rt, ['delete', ...(force ? ['--force'] : []), id]), {
        timeoutMs: this.timeoutMs,
        allowFailure: true,
      });
      if (res.code !== 0 && !NOT_EXIST.test(res.stderr)) throw internal(`${rt.path} delete ${id}: ${res.stderr.trim()}`);
    } catch (e) {
      if (isCorralError(e, 'NotFound')) throw e; // the runtime binary itself is missing
      throw e;
    }
  }
}
