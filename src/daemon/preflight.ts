import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { CorralConfig } from '../config/schema';
import { ConfigError } from '../config/load';

/**
 * Checks, before any side effect beyond creating the state dirs, that the daemon can work:
 * writable root and run root, runtime handler binaries and conmon present. Throws ConfigError
 * with one line naming the problem.
 */
export function preflight(c: CorralConfig): void {
  for (const [key, dir] of [['root', c.root], ['run_root', c.run_root]] as const) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o711 });
      const probe = path.join(dir, `.write-probe-${process.pid}`);
      writeFileSync(probe, '');
      rmSync(probe);
    } catch (e) {
      throw new ConfigError(`${key} ${dir} is not writable: ${(e as Error).message}`);
    }
  }
  for (const [name, h] of Object.entries(c.runtime.handlers)) {
    if (!isExecutable(h.path)) {
      throw new ConfigError(`runtime handler "${name}": ${h.path} not found or not executable (install Debian package runc, or fix runtime.handlers.${name}.path)`);
    }
  }
  if (!isExecutable(c.runtime.conmon)) {
    throw new ConfigError(`runtime.conmon: ${c.runtime.conmon} not found or not executable (install Debian package conmon)`);
  }
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
