import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaults } from '../../src/config/load';
import type { CorralConfig } from '../../src/config/schema';
import { ImageService } from '../../src/image/service';

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
): Promise<void> {
  const cfg = testConfig(over);
  const svc = await ImageService.open({ config: cfg, retry: { attempts: 3, backoffMs: 10 } });
  try {
    await fn(svc, cfg);
  } finally {
    await svc.close();
    rmSync(cfg.root, { recursive: true, force: true });
  }
}
