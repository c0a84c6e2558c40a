import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../core/errors';
import type { Logger } from '../log/logger';
import type { RuntimeHandlerConfig } from '../config/schema';
import { launchConmon } from './conmon';
import { ExitMonitor, type ExitListener, type ExitStatus } from './exit-monitor';
import { RuncClient, type OciRuntime, type RuncState } from './runc';

export interface RuntimeDriverOptions {
  conmon: string;
  /** Configured runtime handlers (read at each call: reloadable). */
  handlers: () => Record<string, RuntimeHandlerConfig>;
  /** Directory for exit files, attach sockets and default runtime roots (`<run_root>`). */
  runRoot: string;
  cgroupManager: () => 'cgroupfs' | 'systemd';
  logSizeMax?: () => number;
  log: Logger;
  timeoutMs?: number;
  /** Wraps each runtime invocation, e.g. to record its duration and failures (corral_oci_runtime_operation_*). */
  observe?: <T>(operation: string, binary: string, fn: () => Promise<T>) => Promise<T>;
}

/** A container to create under conmon. */
export interface CreateRequest {
  id: string;
  /** Runtime handler name (config.runtime.handlers key). */
  handler: string;
  bundle: string;
  /** CRI log file conmon writes. */
  logPath: string;
  /** Directory conmon keeps its pid file, `exit` and `oom` files in (per container). */
  persistDir: string;
  name?: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  timeoutMs?: number;
}

/**
 * The conmon + runc driver shared by pod infra containers and workload containers:
 * create (runc create under conmon), start, kill, state, delete, and exits from conmon's exit files.
 */
export class RuntimeDriver {
  readonly exits: ExitMonitor;
  readonly exitDir: string;
  readonly socketDir: string;
  private readonly runc: RuncClient;

  constructor(private readonly o: RuntimeDriverOptions) {
    this.exitDir = path.join(o.runRoot, 'exits');
    this.socketDir = path.join(o.runRoot, 'sockets');
    this.exits = new ExitMonitor(this.exitDir, o.log);
    this.runc = new RuncClient(o.timeoutMs ?? 30_000);
  }

  async init(): Promise<void> {
    await fs.mkdir(this.socketDir, { recursive: true });
    await this.exits.start();
  }

  close(): void {
    this.exits.close();
  }

  /** Resolves a handler name to its binary and state root; unknown names are InvalidArgument. */
  runtime(handler: string): OciRuntime {
    const h = this.o.handlers()[handler];
    if (!h) throw invalidArgument(`unknown runtime handler ${JSON.stringify(handler)} (configured: ${Object.keys(this.o.handlers()).join(', ')})`);
    return { name: handler, path: h.path, root: h.root || path.join(this.o.runRoot, 'runtimes', handler) }; // = config handlerRoot(): wipe finds them
  }

  hasHandler(handler: string): boolean {
    return !!this.o.handlers()[handler];
  }

  /** Creates the container (not started): conmon runs `runc create`. Returns the container's init pid. */
  async create(r: CreateRequest): Promise<{ pid: number }> {
    const rt = this.runtime(r.handler);
    await fs.mkdir(r.persistDir, { recursive: true });
    await fs.mkdir(path.dirname(r.logPath), { recursive: true });
    await this.exits.forget(r.id); // a stale exit file would report the new container dead
    return this.timed('create', 'conmon', () => launchConmon({
      conmon: this.o.conmon,
      runtimePath: rt.path,
      runtimeRoot: rt.root,
      id: r.id,
      name: r.name ?? r.id,
      bundle: r.bundle,
      logPath: r.logPath,
      exitDir: this.exitDir,
      persistDir: r.persistDir,
      socketDir: this.socketDir,
      containerPidFile: path.join(r.persistDir, 'pidfile'),
      conmonPidFile: path.join(r.persistDir, 'conmon.pid'),
      terminal: r.terminal,
      stdin: r.stdin,
      stdinOnce: r.stdinOnce,
      systemdCgroup: this.o.cgroupManager() === 'systemd',
      logSizeMax: this.o.logSizeMax?.(),
      timeoutMs: r.timeoutMs ?? this.o.timeoutMs,
    }));
  }

  private timed<T>(operation: string, binary: string, fn: () => Promise<T>): Promise<T> {
    return this.o.observe ? this.o.observe(operation, binary, fn) : fn();
  }

  start(id: string, handler: string): Promise<void> {
    const rt = this.runtime(handler);
    return this.timed('start', rt.name, () => this.runc.start(rt, id));
  }

  kill(id: string, handler: string, signal: string, all = false): Promise<void> {
    const rt = this.runtime(handler);
    return this.timed('kill', rt.name, () => this.runc.kill(rt, id, signal, all));
  }

  state(id: string, handler: string): Promise<RuncState | undefined> {
    const rt = this.runtime(handler);
    return this.timed('state', rt.name, () => this.runc.state(rt, id));
  }

  /** Removes the container from the runtime, its exit file and attach socket link. Idempotent. */
  async delete(id: string, handler: string, force: boolean): Promise<void> {
    const rt = this.runtime(handler);
    await this.timed('delete', rt.name, () => this.runc.delete(rt, id, force));
    await this.exits.forget(id);
    await fs.rm(path.join(this.socketDir, id), { force: true, recursive: true });
  }

  onExit(cb: ExitListener): () => void {
    return this.exits.onExit(cb);
  }

  exitStatus(id: string): Promise<ExitStatus | undefined> {
    return this.exits.read(id);
  }

  waitExit(id: string, timeoutMs: number): Promise<ExitStatus> {
    return this.exits.waitExit(id, timeoutMs);
  }

  /** Whether conmon recorded an OOM kill for the container (its persist dir holds an `oom` file). */
  async oomKilled(persistDir: string): Promise<boolean> {
    try {
      await fs.access(path.join(persistDir, 'oom'));
      return true;
    } catch {
      return false;
    }
  }

  /** Pid of the conmon monitoring the container, if its pid file exists. */
  async conmonPid(persistDir: string): Promise<number | undefined> {
    try {
      const n = Number((await fs.readFile(path.join(persistDir, 'conmon.pid'), 'utf8')).trim());
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }
}
