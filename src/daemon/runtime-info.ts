import * as path from 'node:path';
import type { CorralConfig } from '../config/schema';
import { invalidArgument } from '../core/errors';
import { CORRAL_VERSION } from '../core/version';
import { readJson, writeJsonAtomic } from '../store/atomic';

export interface Condition {
  type: 'RuntimeReady' | 'NetworkReady';
  status: boolean;
  reason: string;
  message: string;
}

export interface NetworkStatusSource {
  networkStatus(): { ready: boolean; reason: string; message: string };
}

/**
 * Node-level runtime facts for Version, Status, RuntimeConfig and UpdateRuntimeConfig. The pod CIDR that
 * kubelet pushes is persisted so it survives a restart and is reported back in verbose Status.
 */
export class RuntimeInfo {
  private podCidr = '';
  private network: NetworkStatusSource | undefined;

  constructor(private readonly config: CorralConfig) {}

  private get stateFile(): string {
    return path.join(this.config.root, 'runtime-config.json');
  }

  async load(): Promise<void> {
    const saved = await readJson<{ podCidr?: string }>(this.stateFile);
    this.podCidr = saved?.podCidr ?? '';
  }

  setNetworkSource(src: NetworkStatusSource): void {
    this.network = src;
  }

  conditions(): Condition[] {
    const net = this.network?.networkStatus() ?? {
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: 'Network plugin returns error: no network area loaded',
    };
    return [
      { type: 'RuntimeReady', status: true, reason: '', message: '' },
      { type: 'NetworkReady', status: net.ready, reason: net.ready ? '' : net.reason, message: net.ready ? '' : net.message },
    ];
  }

  /** Verbose info, like cri-o's: the effective config as JSON, plus the pod CIDR and version. */
  info(): Record<string, string> {
    return {
      config: JSON.stringify(this.config),
      podCIDR: this.podCidr,
      version: CORRAL_VERSION,
    };
  }

  handlers(): string[] {
    return Object.keys(this.config.runtime.handlers);
  }

  getPodCidr(): string {
    return this.podCidr;
  }

  async updatePodCidr(cidr: string): Promise<void> {
    if (cidr === this.podCidr) return;
    if (cidr !== '' && !isCidrList(cidr)) throw invalidArgument(`pod_cidr: not a CIDR (or comma-separated CIDRs): ${JSON.stringify(cidr)}`);
    await writeJsonAtomic(this.stateFile, { podCidr: cidr });
    this.podCidr = cidr;
  }
}

function isCidrList(v: string): boolean {
  return v.split(',').every((c) => {
    const m = /^(.+)\/(\d{1,3})$/.exec(c.trim());
    if (!m) return false;
    const bits = Number(m[2]);
    if (/^\d+\.\d+\.\d+\.\d+$/.test(m[1])) return bits <= 32 && m[1].split('.').every((o) => Number(o) <= 255);
    return m[1].includes(':') && bits <= 128;
  });
}
