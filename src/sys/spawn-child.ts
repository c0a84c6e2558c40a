import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * `child_process.spawn` for the daemon: every pipe of the child gets an 'error' listener. Node's child
 * pipes are socketpairs, and Node reads the extra ones (fd 3+) too: a child that exits without reading
 * what we wrote hands us ECONNRESET or EPIPE there. The child's exit is what reports that failure; an
 * 'error' event with no listener would instead throw and take the whole daemon (and every RPC in flight)
 * down. Every direct spawn in src/ goes through here.
 */
export function spawnChild(file: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(file, args, opts);
  for (const s of child.stdio) s?.on('error', () => {});
  return child;
}
