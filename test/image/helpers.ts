import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaults } from '../../src/config/load';
import type { CorralConfig } from '../../src/config/schema';
import type { Logger } from '../../src/log/logger';
import { ImageService, type ImageServiceOptions } from '../../src/image/service';

export function testConfig(over: (c: CorralConfig) => void = () => {}): CorralConfig {
  const c = defaults();
  c.root = mkdtempSync(path.join(os.tmpdir(), 'corral-img-'));
  c.image.stall_window_seconds = 1;
  over(c);
  return c;
}

export async function withService(
  fn: (svc: ImageService, cfg: CorralConfig) => Promise<void>,
  over?: (c: CorralConfig) => void,
  extra: Partial<ImageServiceOptions> = {},
): Promise<void> {
  const cfg = testConfig(over);
  const svc = await ImageService.open({ config: cfg, retry: { attempts: 3, backoffMs: 10 }, ...extra });
  try {
    await fn(svc, cfg);
  } finally {
    await svc.close();
    rmSync(cfg.root, { recursive: true, force: true });
  }
}

/** A logger that keeps every line (message + fields) for assertions. */
export function captureLogger(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const l = {
    lines,
    debug: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'debug', msg, fields }),
    info: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'warn', msg, fields }),
    error: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'error', msg, fields }),
    child: () => l,
    enabled: () => true,
  };
  return l;
}
