/** The parts of a CNI ADD result (0.3.0 – 1.x, and 0.1/0.2's ip4/ip6) corral reads. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number; version?: string }[];
  ip4?: { ip: string; gateway?: string };
  ip6?: { ip: string; gateway?: string };
  routes?: unknown[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/** Pod addresses of a result without prefix length, IPv4 first (kubelet takes the first as the pod IP). */
export function resultIps(r: CniResult | undefined): string[] {
  if (!r) return [];
  const addrs: string[] = [];
  if (Array.isArray(r.ips)) {
    for (const ip of r.ips) {
      // Only addresses on interfaces inside the sandbox (or with no interface index) are pod IPs.
      const iface = ip.interface !== undefined ? r.interfaces?.[ip.interface] : undefined;
      if (iface && !iface.sandbox) continue;
      if (typeof ip.address === 'string') addrs.push(ip.address.split('/')[0]);
    }
  }
  if (r.ip4?.ip) addrs.push(r.ip4.ip.split('/')[0]);
  if (r.ip6?.ip) addrs.push(r.ip6.ip.split('/')[0]);
  const uniq = [...new Set(addrs)];
  return [...uniq.filter((a) => !a.includes(':')), ...uniq.filter((a) => a.includes(':'))];
}
