import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** corral's version, read from package.json (dist/src/core → repo root). */
export const CORRAL_VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0-unknown';
  }
})();

export const RUNTIME_NAME = 'corral';
export const RUNTIME_API_VERSION = 'v1';
/** The kubelet runtime API version string every CRI runtime reports in VersionResponse.version. */
export const KUBELET_API_VERSION = '0.1.0';
