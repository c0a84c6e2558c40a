import { promises as fs, constants } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file atomically and durably: temp file in the same directory, fsync, rename over the
 * target, fsync the directory. A crash leaves either the old or the new content, never a mix.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const d = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Writes JSON atomically (bigint values become strings). */
export async function writeJsonAtomic(file: string, value: unknown, mode = 0o644): Promise<void> {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
  await writeFileAtomic(file, text, mode);
}

/** Reads JSON, or undefined when the file does not exist. */
export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Removes temp files left by an interrupted writeFileAtomic in dir. */
export async function removeStaleTemps(dir: string): Promise<number> {
  let n = 0;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (name.startsWith('.') && name.endsWith('.tmp')) {
      await fs.rm(path.join(dir, name), { force: true, recursive: true });
      n++;
    }
  }
  return n;
}
