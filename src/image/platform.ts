import type { Platform } from './media-types';

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips: 'mips',
  mipsel: 'mipsle',
  loong64: 'loong64',
};

/** The platform images are pulled for: linux + the host arch in Go's naming (+ variant for arm). */
export function hostPlatform(): Platform {
  const architecture = GOARCH[process.arch] ?? process.arch;
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    return { os: 'linux', architecture, variant: `v${v ?? '7'}` };
  }
  return { os: 'linux', architecture };
}

function normVariant(arch: string, variant: string | undefined): string | undefined {
  if (arch === 'arm64' && (variant === undefined || variant === '' || variant === '8')) return 'v8';
  if (!variant) return undefined;
  return variant;
}

/**
 * Ranks a candidate platform for `want`: -1 when it cannot run; otherwise higher is better
 * (exact variant beats a lower compatible arm variant; a missing variant is accepted last).
 */
export function platformScore(want: Platform, have: Platform | undefined): number {
  if (!have) return -1;
  if (have.os !== want.os || have.architecture !== want.architecture) return -1;
  const wv = normVariant(want.architecture, want.variant);
  const hv = normVariant(have.architecture, have.variant);
  if (wv === hv) return 100;
  if (!hv) return 50;
  if (want.architecture === 'arm' && wv && hv) {
    const w = Number(wv.slice(1));
    const h = Number(hv.slice(1));
    if (h < w) return 50 + h;
  }
  return -1;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}
