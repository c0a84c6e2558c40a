import * as path from 'node:path';
import { nowNs } from '../core/ids';
import { readText } from './cgroup';
import type { InterfaceStats, NetworkSample } from './types';

/**
 * Parses /proc/<pid>/net/dev. Columns after "iface:" are 8 receive fields (bytes packets errs drop fifo frame
 * compressed multicast) then 8 transmit fields (bytes packets errs drop fifo colls carrier compressed).
 * The loopback interface is skipped.
 */
export function parseNetDev(text: string): InterfaceStats[] {
  const out: InterfaceStats[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!name || name === 'lo' || name.includes('|')) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    if (f.length < 16 || !f.every((x) => /^\d+$/.test(x))) continue;
    const n = f.map((x) => BigInt(x));
    out.push({
      name,
      rxBytes: n[0], rxPackets: n[1], rxErrors: n[2], rxDropped: n[3],
      txBytes: n[8], txPackets: n[9], txErrors: n[10], txDropped: n[11],
    });
  }
  return out;
}

/**
 * Network counters of the network namespace a process lives in, read from /proc/<pid>/net/dev (the kernel
 * answers for the reader's target process namespace, so no setns is needed). Use the pod's infra pid.
 * Undefined when the process is gone.
 */
export async function readNetworkStats(pid: number, procRoot = '/proc'): Promise<NetworkSample | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const text = await readText(path.join(procRoot, String(pid), 'net', 'dev'));
  if (text === undefined) return undefined;
  const interfaces = parseNetDev(text);
  return { timestampNs: nowNs(), defaultInterface: interfaces.find((i) => i.name === 'eth0') ?? interfaces[0], interfaces };
}
