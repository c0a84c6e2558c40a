import { spawnChild } from '../sys/spawn-child';
import type { Logger } from '../log/logger';

/**
 * systemd readiness notification. Node cannot send unix datagrams, so this uses systemd's own
 * `systemd-notify` helper with our pid (the unit sets NotifyAccess=all). No-op without NOTIFY_SOCKET.
 */
export function sdNotify(state: string, log: Logger): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    const child = spawnChild('systemd-notify', [`--pid=${process.pid}`, ...state.split('\n')], { stdio: 'ignore' });
    child.on('error', (e) => {
      log.warn('systemd-notify failed; readiness not reported', { error: e.message });
      resolve();
    });
    child.on('close', (code) => {
      if (code !== 0) log.warn('systemd-notify failed', { code, state });
      resolve();
    });
  });
}
