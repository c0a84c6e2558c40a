import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { failedPrecondition } from '../core/errors';
import type { PortMapping } from './types';

const key = (p: PortMapping) => `${p.protocol}/${p.hostPort}`;

/**
 * Host ports held by pods. Two mappings of one protocol and port conflict unless both name different,
 * specific host IPs. Reservation is a synchronous check-and-set.
 */
export class HostPortRegistry {
  private readonly held = new Map<string, { owner: string; hostIp: string }[]>();

  reserve(owner: string, mappings: readonly PortMapping[]): void {
    const wanted = mappings.filter((m) => m.hostPort > 0);
    for (const m of wanted) {
      for (const h of this.held.get(key(m)) ?? []) {
        if (h.owner === owner) continue;
        if (!h.hostIp || !m.hostIp || h.hostIp === m.hostIp) {
          throw failedPrecondition(`host port ${m.hostIp || '0.0.0.0'}:${m.hostPort}/${m.protocol} is already used by pod sandbox ${h.owner}`);
        }
      }
    }
    for (const m of wanted) {
      const list = this.held.get(key(m)) ?? [];
      list.push({ owner, hostIp: m.hostIp });
      this.held.set(key(m), list);
    }
  }

  release(owner: string): void {
    for (const [k, list] of this.held) {
      const rest = list.filter((h) => h.owner !== owner);
      if (rest.length === 0) this.held.delete(k);
      else this.held.set(k, rest);
    }
  }
}

/** Fails when a host process already listens on a mapped TCP/UDP host port (portmap's DNAT would hide it). */
export async function probeHostPorts(mappings: readonly PortMapping[]): Promise<void> {
  for (const m of mappings) {
    if (m.hostPort <= 0 || m.protocol === 'sctp') continue;
    const host = m.hostIp || '0.0.0.0';
    const err = await (m.protocol === 'tcp' ? probeTcp(host, m.hostPort) : probeUdp(host, m.hostPort));
    if (err) throw failedPrecondition(`host port ${host}:${m.hostPort}/${m.protocol} is not available: ${err}`);
  }
}

function probeTcp(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

function probeUdp(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.close();
      resolve(e.code ?? e.message);
    });
    s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}
