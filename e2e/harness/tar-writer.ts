/**
 * A tiny ustar + PAX tar writer for test images. It writes names and link targets verbatim, so it can
 * produce hostile archives (`../evil`, `/abs`, device nodes, odd modes) on purpose.
 */

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  data?: Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; fractions go into a PAX `mtime` record. Default: a fixed date, so builds are reproducible. */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** Written as PAX `SCHILY.xattr.<name>` records (the form GNU tar, containerd and Docker read). */
  xattrs?: Record<string, string | Buffer>;
}

/** 2023-11-14T22:13:20Z: a fixed default mtime keeps layer digests stable across runs. */
export const DEFAULT_MTIME = 1_700_000_000;

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  hardlink: 0o644,
  symlink: 0o777,
  char: 0o666,
  block: 0o660,
  dir: 0o755,
  fifo: 0o644,
};

/** Largest value an octal field of `width` bytes holds (width-1 digits plus a NUL). */
function octalMax(width: number): number {
  return 8 ** (width - 1) - 1;
}

function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  const s = Math.max(0, Math.floor(value)).toString(8).padStart(width - 1, '0');
  buf.write(s.slice(-(width - 1)), off, width - 1, 'ascii');
  buf[off + width - 1] = 0;
}

/** Copies at most `width` bytes of `s`; the caller adds a PAX record when it did not fit. */
function writeBytes(buf: Buffer, off: number, width: number, s: string): void {
  Buffer.from(s, 'utf8').copy(buf, off, 0, width);
}

/** One PAX record: "<len> <key>=<value>\n" where <len> counts the whole record in bytes, itself included. */
function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

interface HeaderFields {
  name: string;
  typeflag: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function header(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeBytes(h, 0, 100, f.name);
  writeOctal(h, 100, 8, f.mode & 0o7777);
  writeOctal(h, 108, 8, Math.min(f.uid, octalMax(8)));
  writeOctal(h, 116, 8, Math.min(f.gid, octalMax(8)));
  writeOctal(h, 124, 12, f.size);
  writeOctal(h, 136, 12, Math.min(f.mtime, octalMax(12)));
  h.write(f.typeflag, 156, 1, 'ascii');
  writeBytes(h, 157, 100, f.linkname);
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  writeOctal(h, 329, 8, Math.min(f.devmajor, octalMax(8)));
  writeOctal(h, 337, 8, Math.min(f.devminor, octalMax(8)));
  // Checksum: byte sum with the checksum field read as eight spaces; six octal digits, NUL, space.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function padding(size: number): Buffer | undefined {
  const rest = size % BLOCK;
  return rest === 0 ? undefined : Buffer.alloc(BLOCK - rest);
}

function paxRecordsFor(e: TarEntry, linkname: string, uid: number, gid: number, mtime: number): Buffer[] {
  const recs: Buffer[] = [];
  if (Buffer.byteLength(e.name, 'utf8') > 100) recs.push(paxRecord('path', e.name));
  if (Buffer.byteLength(linkname, 'utf8') > 100) recs.push(paxRecord('linkpath', linkname));
  if (uid > octalMax(8)) recs.push(paxRecord('uid', String(uid)));
  if (gid > octalMax(8)) recs.push(paxRecord('gid', String(gid)));
  if (!Number.isInteger(mtime) || mtime > octalMax(12) || mtime < 0) recs.push(paxRecord('mtime', String(mtime)));
  for (const [k, v] of Object.entries(e.xattrs ?? {})) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  return recs;
}

/** Serialises entries, in order, into one tar archive (ending with the two zero blocks). */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const chunks: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? e.data ?? Buffer.alloc(0) : Buffer.alloc(0);
    if (e.type !== 'file' && e.data && e.data.length > 0) throw new Error(`tar entry ${e.name}: only files carry data`);
    const linkname = e.linkname ?? '';
    if ((e.type === 'symlink' || e.type === 'hardlink') && e.linkname === undefined) {
      throw new Error(`tar entry ${e.name}: ${e.type} needs a linkname`);
    }
    const uid = e.uid ?? 0;
    const gid = e.gid ?? 0;
    const mtime = e.mtime ?? DEFAULT_MTIME;
    const recs = paxRecordsFor(e, linkname, uid, gid, mtime);
    if (recs.length > 0) {
      const body = Buffer.concat(recs);
      // The PAX header's own name is informational; keep it short and inside 100 bytes.
      const base = e.name.replace(/\/+$/, '').split('/').pop() || 'entry';
      chunks.push(
        header({
          name: `PaxHeaders.0/${base}`.slice(0, 99),
          typeflag: 'x',
          size: body.length,
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtime: Math.min(Math.max(0, Math.floor(mtime)), octalMax(12)),
          linkname: '',
          devmajor: 0,
          devminor: 0,
        }),
        body,
      );
      const pad = padding(body.length);
      if (pad) chunks.push(pad);
    }
    chunks.push(
      header({
        name: e.name,
        typeflag: TYPEFLAG[e.type],
        size: data.length,
        mode: e.mode ?? DEFAULT_MODE[e.type],
        uid,
        gid,
        mtime,
        linkname,
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (data.length > 0) {
      chunks.push(data);
      const pad = padding(data.length);
      if (pad) chunks.push(pad);
    }
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(chunks);
}
