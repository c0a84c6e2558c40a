import type { ChildProcess } from 'node:child_process';

/**
 * Gives every pipe of a child an 'error' listener. Node's child pipes are socketpairs, and Node reads
 * the extra ones (fd 3+) too: a child that exits without reading what we wrote hands us ECONNRESET or
 * EPIPE there. The child's exit is what reports that failure; an 'error' event with no listener would
 * instead throw and take the whole daemon (and every RPC in flight) down.
 */
export function quietChildPipes(child: ChildProcess): ChildProcess {
  for (const s of child.stdio) s?.on('error', () => {});
  return child;
}
