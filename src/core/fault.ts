import { writeSync } from 'node:fs';

/** The env var naming the fault point(s) to die at (a name, or a comma list of names). */
export const FAULT_ENV = 'CORRAL_FAULT_POINT';

/** Parses the env value into the set of armed points; empty when unset. */
export function parseFaultPoints(value: string | undefined): ReadonlySet<string> {
  return new Set((value ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

// Read once at import: an unset variable costs one Set lookup-free branch per call.
const armed = parseFaultPoints(process.env[FAULT_ENV]);
const enabled = armed.size > 0;

/**
 * Debug hook for crash-consistency tests: when CORRAL_FAULT_POINT names this point, the daemon dies
 * here with a real SIGKILL (no finally blocks, no exit handlers, no flush), as a `kill -9` would.
 * Does nothing otherwise.
 */
export function faultPoint(name: string): void {
  if (!enabled || !armed.has(name)) return;
  try {
    // Synchronous write: the line is out before the signal lands.
    writeSync(2, `fault point ${name}: exiting\n`);
  } catch {
    /* stderr closed: die anyway */
  }
  process.kill(process.pid, 'SIGKILL');
}
