import { lstatSync, readdirSync, statSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../../core/errors';
import type { DeviceRequest } from './input';
import type { OciDevice, OciDeviceCgroup } from '../../oci/types';
import type { SpecOpt } from './opts';

/** Linux dev_t split (glibc's gnu_dev_major/minor). */
export function splitDevT(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function deviceType(st: BigIntStats): OciDevice['type'] | undefined {
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return undefined;
}

function toDevice(st: BigIntStats, containerPath: string): OciDevice | undefined {
  const type = deviceType(st);
  if (!type) return undefined;
  const { major, minor } = splitDevT(st.rdev);
  return { path: containerPath, type, major, minor, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
}

/** The devices a CRI Device names: one device node, or every device below a directory. */
export function devicesFromRequest(d: DeviceRequest): { device: OciDevice; access: string }[] {
  const access = d.permissions || 'rwm';
  if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
    throw invalidArgument(`invalid device permissions ${JSON.stringify(d.permissions)} for ${d.hostPath}: use a combination of r, w and m`);
  }
  if (!d.hostPath || !path.isAbsolute(d.hostPath)) throw invalidArgument(`device host path ${JSON.stringify(d.hostPath)} must be absolute`);
  if (!d.containerPath || !path.posix.isAbsolute(d.containerPath)) {
    throw invalidArgument(`device container path ${JSON.stringify(d.containerPath)} must be absolute`);
  }
  let st: BigIntStats;
  try {
    st = statSync(d.hostPath, { bigint: true });
  } catch (e) {
    throw invalidArgument(`device ${JSON.stringify(d.hostPath)} does not exist`, e);
  }
  if (st.isDirectory()) {
    return walkDevices(d.hostPath, path.posix.normalize(d.containerPath), new Set()).map((device) => ({ device, access }));
  }
  const device = toDevice(st, path.posix.normalize(d.containerPath));
  if (!device) throw invalidArgument(`${JSON.stringify(d.hostPath)} is not a device`);
  return [{ device, access }];
}

function walkDevices(hostDir: string, containerDir: string, skip: Set<string>): OciDevice[] {
  const out: OciDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(hostDir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    if (skip.has(name)) continue;
    const hp = path.join(hostDir, name);
    let st: BigIntStats;
    try {
      st = lstatSync(hp, { bigint: true }); // symlinks (e.g. /dev/stdin) are not devices of their own
    } catch {
      continue; // vanished
    }
    if (st.isDirectory()) out.push(...walkDevices(hp, path.posix.join(containerDir, name), new Set()));
    else {
      const dev = toDevice(st, path.posix.join(containerDir, name));
      if (dev && dev.type !== 'p') out.push(dev);
    }
  }
  return out;
}

/** Every device of the host (privileged containers), as runc's HostDevices: without pts, shm, mqueue, console. */
export function hostDevices(devDir = '/dev'): OciDevice[] {
  return walkDevices(devDir, '/dev', new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev', 'console', 'ptmx', 'core']));
}

function upsertDevice(list: OciDevice[], d: OciDevice): void {
  const at = list.findIndex((x) => x.path === d.path);
  if (at >= 0) list[at] = d;
  else list.push(d);
}

/** Request devices (and, when privileged, all host devices with every device allowed). */
export const withDevices: SpecOpt = (s, ctx) => {
  const privileged = !!ctx.input.security?.privileged;
  const devices = s.linux.devices ?? [];
  let rules: OciDeviceCgroup[] = s.linux.resources?.devices ?? [];
  if (privileged) {
    for (const d of hostDevices(ctx.host.hostDevDir)) upsertDevice(devices, d);
    rules = [{ allow: true, access: 'rwm' }];
  }
  for (const req of ctx.input.devices ?? []) {
    for (const { device, access } of devicesFromRequest(req)) {
      upsertDevice(devices, device);
      if (!privileged && device.type !== 'p') rules.push({ allow: true, type: device.type as 'c' | 'b', major: device.major, minor: device.minor, access });
    }
  }
  s.linux.devices = devices;
  s.linux.resources = { ...s.linux.resources, devices: rules };
};
