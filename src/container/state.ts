import { failedPrecondition } from '../core/errors';
import type { ContainerRecord, ExitReason } from './types';

/** Exit code reported for a container whose process could not be started (as Docker's "cannot run"). */
export const CANNOT_RUN_EXIT_CODE = 128;
/** Exit code reported when a container vanished while corral was down and left no exit file. */
export const UNKNOWN_EXIT_CODE = 255;

export function exitReason(exitCode: number, oomKilled: boolean): ExitReason {
  if (oomKilled) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}

/** StartContainer is allowed only on a created container. */
export function checkStartable(r: ContainerRecord): void {
  if (r.state === 'created') return;
  if (r.state === 'exited' && r.reason === 'ContainerCannotRun') {
    throw failedPrecondition(`container ${r.id} cannot run: ${r.message}`);
  }
  throw failedPrecondition(`container ${r.id} is ${r.state.toUpperCase()}, not CREATED: it cannot be started`);
}

export function started(r: ContainerRecord, atNs: bigint): ContainerRecord {
  return { ...r, state: 'running', startedAtNs: atNs.toString() };
}

/**
 * The record after the container's process ended. A record already exited keeps its first exit
 * (exit events can arrive twice: the watcher, and the stop path reading the exit file).
 */
export function exited(r: ContainerRecord, e: { exitCode: number; finishedAtNs: bigint; oomKilled: boolean; message?: string }): ContainerRecord {
  if (r.state === 'exited') return r;
  return {
    ...r,
    state: 'exited',
    pid: 0,
    exitCode: e.exitCode,
    finishedAtNs: e.finishedAtNs.toString(),
    reason: exitReason(e.exitCode, e.oomKilled),
    message: e.message ?? (e.oomKilled ? 'the container was killed for exceeding its memory limit' : ''),
  };
}

/** The record of a container whose process could not be started (bad command, missing binary, ...). */
export function cannotRun(r: ContainerRecord, message: string, atNs: bigint): ContainerRecord {
  return {
    ...r,
    state: 'exited',
    pid: 0,
    exitCode: CANNOT_RUN_EXIT_CODE,
    startedAtNs: r.startedAtNs,
    finishedAtNs: atNs.toString(),
    reason: 'ContainerCannotRun',
    message,
  };
}

/**
 * Whether a runtime failure means the container's process cannot run at all (bad command or binary) rather
 * than a runtime fault: runc reports these from the container's init.
 */
export function isCannotRunError(message: string): boolean {
  return /executable file not found|no such file or directory|permission denied|exec format error|not a directory/i.test(message)
    && /exec|starting container process|container process/i.test(message);
}

/** A short, user-facing message from runc's error text (drops runc's log-level prefixes and JSON noise). */
export function cleanRuntimeMessage(message: string): string {
  const m = /(exec: [^\n]*?)(?:["']?: unknown|$)/m.exec(message) ?? /(exec [^\n]*?: [^\n]*?)(?:: unknown|$)/m.exec(message);
  let out = (m ? m[1] : message).replace(/\\"/g, '"').trim();
  // runc's msg="..." wrapper leaves one closing quote behind.
  if (out.endsWith('"') && (out.match(/"/g) ?? []).length % 2 === 1) out = out.slice(0, -1);
  return out;
}
