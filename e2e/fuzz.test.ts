import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client, credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { startDaemon } from './harness/daemon';
import { enableNetwork, removeCgroupTree, removeNetwork } from './harness/network';
import { PROTO_PATH, loadCri } from '../src/cri/proto';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { existingCgroupDirs } from '../src/sys/cgroups';

// Input robustness (issue 8 point 6): every RPC of RuntimeService and ImageService gets thousands of
// randomised requests — values of the right wire types but hostile content, plus truncated, mutated and
// random bytes — from several concurrent callers against one real daemon. Afterwards the daemon still
// serves, never crashed or logged an unhandled rejection, its fd count and RSS are back near a warm-up
// baseline, and every pod that a random request managed to create is removed with nothing left over.

const NETWORK = { name: 'corral-fz', bridge: 'corral-fz0', subnet: '10.242.0.0/24' };
const CGROUP_PARENT = '/corral-e2e-fuzz';
const FUZZ_MS = Number(process.env.CORRAL_FUZZ_MS ?? 60_000);
const FUZZ_MAX = Number(process.env.CORRAL_FUZZ_MAX ?? 20_000);
const WORKERS = 8;
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Pulls only ever go to this address: connection refused, no traffic leaves the host. */
const DEAD_REGISTRY = '127.0.0.1:1';

// ---- seeded randomness ------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const NASTY = [
  '', ' ', '.', '..', '/', '//', '../../../../etc/passwd', '/etc/shadow', '/proc/self/fd/0', '/dev/zero', '\0', 'a\0b', '\n', '\r\n',
  '\u{1F600}', 'ñ', '\uFFFF', '\uD800', 'Ω≈ç√', '-1', '0', '9223372036854775807', '-9223372036854775808', 'null', 'undefined',
  '%s%n%x', '${jndi:ldap://x}', "'; DROP TABLE x;--", '<script>', 'a/b', 'a:b', 'sha256:' + '0'.repeat(64), 'sha256:zz',
  'UPPER', 'kube-system', 'io.kubernetes.pod.name', 'net.ipv4.ip_forward', 'kernel.shm_rmid_forced', 'runc', 'unknown-handler',
  '*', '?', '[', 'x'.repeat(255), 'x'.repeat(4097),
];
const ALPHABET = 'abcXYZ019-_./:@ \t\0\\"\'ñé€\u{1F600}\u0301\uFFFD';

interface FuzzCtx {
  r: Rand;
  /** Ids that exist (so random requests sometimes reach past the lookup). */
  ids: () => string[];
}

function randString(c: FuzzCtx): string {
  const { r } = c;
  const k = r.next();
  if (k < 0.35) return r.pick(NASTY);
  if (k < 0.45 && c.ids().length > 0) {
    const id = r.pick(c.ids());
    return r.chance(0.7) ? id : id.slice(0, 1 + r.int(id.length));
  }
  if (k < 0.85) {
    const n = r.int(48);
    let s = '';
    const chars = [...ALPHABET];
    for (let i = 0; i < n; i++) s += r.pick(chars);
    return s;
  }
  if (k < 0.995) return 'y'.repeat(1 + r.int(100_000));
  return 'z'.repeat(1_000_000 + r.int(2_000_000)); // huge
}

const INT32 = [0, 1, -1, 2, 7, 255, 65535, 2147483647, -2147483648];
const UINT32 = [0, 1, 2, 255, 65535, 4294967295];
const INT64 = ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '4294967296', '1000000000000', '-100'];
const UINT64 = ['0', '1', '18446744073709551615', '9223372036854775808', '4294967296'];
const DOUBLE = [0, -0, 1.5, -1, NaN, Infinity, -Infinity, 1e308, 5e-324];

function randScalar(c: FuzzCtx, type: string, resolved: protobuf.ReflectionObject | null): unknown {
  const { r } = c;
  if (resolved instanceof protobuf.Enum) {
    const names = Object.keys(resolved.values);
    return r.chance(0.85) ? r.pick(names) : r.pick([-1, 99, 2147483647]);
  }
  switch (type) {
    case 'string':
      return randString(c);
    case 'bool':
      return r.chance(0.5);
    case 'bytes':
      return r.chance(0.98) ? r.bytes(r.int(64)) : r.bytes(100_000 + r.int(1_000_000));
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return r.chance(0.7) ? r.pick(INT32) : r.int(2 ** 31) * (r.chance(0.5) ? -1 : 1);
    case 'uint32':
    case 'fixed32':
      return r.chance(0.7) ? r.pick(UINT32) : r.int(2 ** 32);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return r.chance(0.7) ? r.pick(INT64) : String(r.int(2 ** 53) * (r.chance(0.5) ? -1 : 1));
    case 'uint64':
    case 'fixed64':
      return r.chance(0.7) ? r.pick(UINT64) : String(r.int(2 ** 53));
    case 'double':
    case 'float':
      return r.pick(DOUBLE);
    default:
      return undefined;
  }
}

function randValue(c: FuzzCtx, field: protobuf.Field, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return randMessage(c, resolved, depth + 1);
  return randScalar(c, field.type, resolved);
}

/** A random object of the message type: each field present or not, lists and maps of random length. */
function randMessage(c: FuzzCtx, t: protobuf.Type, depth = 0): Record<string, unknown> {
  const { r } = c;
  const out: Record<string, unknown> = {};
  if (depth > 5) return out;
  for (const f of t.fieldsArray) {
    if (!r.chance(depth === 0 ? 0.8 : 0.5)) continue;
    if (f instanceof protobuf.MapField) {
      const m: Record<string, unknown> = {};
      const n = r.chance(0.97) ? r.int(5) : 200 + r.int(depth === 0 ? 2000 : 200);
      for (let i = 0; i < n; i++) {
        const key = f.keyType === 'string' ? (i < 5 ? randString(c) : `k${i}`) : String(r.pick(INT32));
        m[key] = randValue(c, f, depth);
      }
      out[f.name] = m;
    } else if (f.repeated) {
      const n = r.chance(0.97) ? r.int(4) : 100 + r.int(depth === 0 ? 1000 : 100);
      out[f.name] = Array.from({ length: n }, () => randValue(c, f, depth));
    } else {
      out[f.name] = randValue(c, f, depth);
    }
  }
  return out;
}

// ---- wire mutations -------------------------------------------------------------------------------

function mutate(r: Rand, valid: Buffer): Buffer {
  switch (r.int(6)) {
    case 0: // truncated
      return valid.subarray(0, valid.length > 0 ? r.int(valid.length) : 0);
    case 1: {
      // flipped bytes
      const b = Buffer.from(valid);
      for (let i = 0, n = 1 + r.int(4); i < n && b.length > 0; i++) b[r.int(b.length)] ^= 1 + r.int(255);
      return b;
    }
    case 2: // random bytes
      return r.bytes(r.int(512));
    case 3: // garbage appended
      return Buffer.concat([valid, r.bytes(1 + r.int(64))]);
    case 4: // a length-delimited field 1 claiming a huge length
      return Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), r.bytes(r.int(32))]);
    default: // deep nesting of field 1
      return Buffer.concat([...Array.from({ length: 200 }, () => Buffer.from([0x0a, 0x7f])), r.bytes(16)]);
  }
}

// ---- the daemon side ------------------------------------------------------------------------------

interface Method {
  service: 'RuntimeService' | 'ImageService';
  name: string;
  path: string;
  stream: boolean;
  req: protobuf.Type;
}

function methods(): Method[] {
  const root = protobuf.loadSync(PROTO_PATH);
  root.resolveAll();
  const def = loadCri().def;
  const out: Method[] = [];
  for (const service of ['RuntimeService', 'ImageService'] as const) {
    const svc = root.lookupService(`runtime.v1.${service}`);
    const defs = def[`runtime.v1.${service}`] as Record<string, { path: string; responseStream: boolean }>;
    for (const [name, m] of Object.entries(defs)) {
      out.push({ service, name, path: m.path, stream: m.responseStream, req: svc.methods[name].resolvedRequestType! });
    }
  }
  return out;
}

function procStatus(pid: number): { fds: number; rssKb: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { fds, rssKb: m ? Number(m[1]) : 0 };
}

/** Makes the request safe to send: pulls only from a dead local port, pods only under our cgroup parent. */
function tame(c: FuzzCtx, m: Method, obj: Record<string, unknown>): void {
  const { r } = c;
  if (m.name === 'PullImage') {
    const tail = r.chance(0.5) ? 'fuzz/img:' + r.int(1000) : randString(c).replace(/[^a-z0-9._/:@-]/g, '');
    obj.image = { ...((obj.image as object) ?? {}), image: `${DEAD_REGISTRY}/${tail}` };
  }
  const cfg = (m.name === 'RunPodSandbox' ? obj.config : m.name === 'CreateContainer' ? obj.sandbox_config : undefined) as Record<string, any> | undefined;
  if (cfg && typeof cfg === 'object') {
    cfg.linux = { ...(cfg.linux ?? {}), cgroup_parent: r.chance(0.9) ? CGROUP_PARENT : `${CGROUP_PARENT}/${randString(c).replace(/\//g, '_')}` };
  }
}

interface Tally {
  sent: number;
  byCode: Map<string, number>;
  /** Non-domain errors surfaced as INTERNAL ("internal error: ..."), per method. */
  unexpected: Map<string, string>;
  /** One example message per status code (and per method for UNAVAILABLE). */
  samples: Map<string, string>;
  /** Calls that never reached a handler: the HTTP/2 connection refused the stream or dropped. */
  transport: number;
  connections?: number;
}

/** A fresh connection: a unique channel arg keeps grpc-js from sharing a subchannel between clients. */
function connect(socket: string, n: number): Client {
  return new Client(`unix://${socket}`, credentials.createInsecure(), {
    'grpc.max_send_message_length': 80 * 1024 * 1024,
    'grpc.max_receive_message_length': 80 * 1024 * 1024,
    'corral.fuzz.connection': n,
  });
}

let connections = 0;

async function fuzz(socket: string, ms: number, max: number, seed: number, ids: () => string[]): Promise<Tally> {
  const only = process.env.CORRAL_FUZZ_ONLY?.split(',');
  const all = methods().filter((m) => !only || only.includes(m.name));
  const tally: Tally = { sent: 0, byCode: new Map(), unexpected: new Map(), samples: new Map(), transport: 0 };
  const deadline = Date.now() + ms;
  const recent: string[] = [];
  let firstRefused = '';
  const identity = (b: Buffer) => b;
  const worker = async (w: number) => {
    const c: FuzzCtx = { r: new Rand(mulberry32(seed + w)), ids };
    const { r } = c;
    let client = connect(socket, ++connections);
    while (Date.now() < deadline && tally.sent < max) {
      const m = r.pick(all);
      let payload: Buffer = Buffer.alloc(0);
      // A few MiB at most per request: bigger ones only measure how long protobuf decoding blocks.
      for (let tries = 0; tries < 3; tries++) {
        const obj = r.chance(0.1) ? {} : randMessage(c, m.req);
        tame(c, m, obj);
        try {
          payload = Buffer.from(m.req.encode(m.req.fromObject(obj)).finish());
        } catch {
          payload = Buffer.alloc(0);
        }
        if (payload.length <= MAX_REQUEST_BYTES) break;
        payload = Buffer.alloc(0);
      }
      // Raw bytes never for PullImage: a flipped byte in the reference could name a real host.
      if (m.name !== 'PullImage' && !process.env.CORRAL_FUZZ_NO_RAW && r.chance(0.25)) payload = mutate(r, payload);
      tally.sent++;
      const code = await new Promise<{ code: Status; details: string }>((resolve) => {
        const opts = { deadline: new Date(Date.now() + 10_000) };
        if (m.stream) {
          const call = client.makeServerStreamRequest(m.path, identity, identity, payload, new Metadata(), opts);
          let ended = false;
          const done = (v: { code: Status; details: string }) => {
            if (ended) return;
            ended = true;
            clearTimeout(timer);
            resolve(v);
          };
          call.on('data', () => undefined);
          call.on('error', (e: ServiceError) => done({ code: e.code, details: e.details }));
          call.on('end', () => done({ code: Status.OK, details: '' }));
          // An event stream does not end by itself: a subscriber that goes away is part of the test.
          const timer = setTimeout(() => call.cancel(), 20 + r.int(200));
        } else {
          client.makeUnaryRequest(m.path, identity, identity, payload, new Metadata(), opts, (e: ServiceError | null) =>
            resolve(e ? { code: e.code, details: e.details } : { code: Status.OK, details: '' }),
          );
        }
      });
      const key = `${m.name}:${Status[code.code]}`;
      if (process.env.CORRAL_FUZZ_VERBOSE) {
        recent.push(`${tally.sent} ${m.name} len=${payload.length} -> ${Status[code.code]}`);
        if (recent.length > 12) recent.shift();
        if (/refused/.test(code.details) && !firstRefused) firstRefused = recent.join('\n');
      }
      tally.byCode.set(key, (tally.byCode.get(key) ?? 0) + 1);
      const sk = code.code === Status.UNAVAILABLE ? key : Status[code.code];
      if (!tally.samples.has(sk)) tally.samples.set(sk, `${m.name}: ${code.details.slice(0, 200)}`);
      if (code.code === Status.INTERNAL && code.details.startsWith('internal error:')) tally.unexpected.set(m.name, code.details.slice(0, 300));
      if (code.code === Status.UNAVAILABLE && /Stream refused by server|Connection dropped|No connection established/.test(code.details)) {
        // The connection went bad (see the report): go on over a new one, as kubelet's channel would reconnect.
        tally.transport++;
        client.close();
        client = connect(socket, ++connections);
      }
    }
    client.close();
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  tally.connections = connections;
  if (firstRefused) writeFileSync('/tmp/fz/first-refused.txt', firstRefused);
  return tally;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')));
}

async function processesIn(cgroupParent: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if ((await fs.readFile(`/proc/${pid}/cgroup`, 'utf8')).includes(cgroupParent + '/')) out.push(pid);
    } catch {
      /* gone */
    }
  }
  return out;
}

test('fuzz: thousands of random and malformed requests to every RPC; the daemon keeps serving with no leak', { timeout: 300_000 }, async (t) => {
  const seed = Number(process.env.CORRAL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`seed ${seed} (CORRAL_FUZZ_SEED to replay)`);
  const d = await startDaemon({ logLevel: 'info' });
  try {
    await enableNetwork(d, NETWORK);
    const pid = d.pid()!;
    assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.js'), 'pid is the daemon');

    // One real pod, so that random ids sometimes hit an existing object.
    const { pod_sandbox_id: podId } = await d.rt.RunPodSandbox({
      config: { metadata: { name: 'fuzz-anchor', namespace: 'fuzz', uid: 'fuzz-anchor', attempt: 0 }, linux: { cgroup_parent: CGROUP_PARENT } },
    });
    let known = [podId];
    const refresh = setInterval(() => {
      d.rt.ListPodSandbox({}).then((l) => (known = [podId, ...l.items.map((p) => p.id)]), () => undefined);
    }, 1000);
    t.after(() => clearInterval(refresh)); // also when an assertion below throws: a live timer keeps this file from ever exiting

    // Warm-up: JIT, grpc buffers, caches reach their working size; then the baseline.
    const client = connect(d.socket, 0);
    t.after(() => client.close());
    const warm = await fuzz(d.socket, Math.min(10_000, FUZZ_MS / 4), 2_000, seed ^ 0x5eed, () => known);
    await waitFor(async () => (await d.rt.Version({}, { timeoutMs: 2000 })).version, { what: 'Version after warm-up' });
    const base = procStatus(pid);
    t.diagnostic(`warm-up: ${warm.sent} requests; baseline fds=${base.fds} rss=${(base.rssKb / 1024).toFixed(1)} MiB`);

    const started = Date.now();
    const tally = await fuzz(d.socket, FUZZ_MS, FUZZ_MAX, seed, () => known);
    clearInterval(refresh);
    const secs = (Date.now() - started) / 1000;
    t.diagnostic(`fuzz: ${tally.sent} requests in ${secs.toFixed(1)} s over ${methods().length} methods`);
    const perCode = new Map<string, number>();
    for (const [k, n] of tally.byCode) perCode.set(k.split(':')[1], (perCode.get(k.split(':')[1]) ?? 0) + n);
    t.diagnostic(`status codes: ${[...perCode].map(([k, n]) => `${k}=${n}`).join(' ')}`);
    for (const [m, msg] of tally.unexpected) t.diagnostic(`non-domain error from ${m}: ${msg}`);
    for (const [code, msg] of tally.samples) t.diagnostic(`e.g. ${code}: ${msg}`);
    if (process.env.CORRAL_FUZZ_VERBOSE) for (const [k, n] of [...tally.byCode].sort()) t.diagnostic(`${k} ${n}`);

    // Still alive and serving.
    assert.equal(d.pid(), pid);
    assert.equal(existsSync(`/proc/${pid}`), true, 'the daemon process is alive');
    const v = await d.rt.Version({}, { timeoutMs: 5000 });
    assert.ok(v.runtime_name, 'Version answers');
    const reached = warm.sent - warm.transport + tally.sent - tally.transport;
    t.diagnostic(`requests that reached the daemon: ${reached}; refused or dropped by the HTTP/2 connection: ${warm.transport + tally.transport}`);
    assert.ok(reached >= 1000, `thousands of requests reached the daemon (${reached})`);
    // A fresh raw connection serves.
    await waitFor(
      () => new Promise<boolean>((resolve) => {
        const path = '/runtime.v1.RuntimeService/Version';
        client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new Metadata(), { deadline: new Date(Date.now() + 2000) }, (e) => resolve(!e));
      }),
      { timeoutMs: 20_000, intervalMs: 200, what: 'a raw connection to serve Version' },
    );
    const touched = new Set([...tally.byCode.keys()].map((k) => k.split(':')[0]));
    assert.deepEqual(methods().map((m) => m.name).filter((n) => !touched.has(n)), [], 'every RPC was fuzzed');
    const logs = d.logs();
    assert.ok(!/unhandled rejection|uncaught|FATAL ERROR|heap out of memory/i.test(logs), 'no unhandled rejection or crash in the log');
    assert.deepEqual([...tally.unexpected.keys()], [], 'every failure is a domain error (no raw exception as INTERNAL)');

    // Remove whatever random requests created (pods, containers), then compare with the baseline.
    const ctrs = await d.rt.ListContainers({});
    for (const ctr of ctrs.containers) await d.rt.RemoveContainer({ container_id: ctr.id }).catch(() => undefined);
    const pods = await d.rt.ListPodSandbox({});
    t.diagnostic(`pods left by random requests: ${pods.items.filter((p) => p.id !== podId).length}; containers: ${ctrs.containers.length}`);
    for (const p of pods.items) {
      await d.rt.StopPodSandbox({ pod_sandbox_id: p.id });
      await d.rt.RemovePodSandbox({ pod_sandbox_id: p.id });
    }
    assert.deepEqual((await d.rt.ListPodSandbox({})).items, []);

    let now = procStatus(pid);
    await waitFor(() => {
      now = procStatus(pid);
      return now.fds <= base.fds + 10 && now.rssKb <= base.rssKb + 40 * 1024;
    }, { timeoutMs: 20_000, intervalMs: 500, what: 'fd count and RSS back near the baseline' }).catch(() => undefined);
    t.diagnostic(`after: fds=${now.fds} rss=${(now.rssKb / 1024).toFixed(1)} MiB`);
    assert.ok(now.fds <= base.fds + 10, `fd count back near the baseline (${base.fds} → ${now.fds})`);
    assert.ok(now.rssKb <= base.rssKb + 40 * 1024, `RSS back near the baseline (${base.rssKb} kB → ${now.rssKb} kB)`);

    // Nothing of any pod is left on the machine.
    assert.deepEqual(mountsUnder(d.runRoot), [], 'no mounts under the run root');
    const netnsDir = path.join(d.runRoot, 'netns');
    assert.deepEqual(existsSync(netnsDir) ? await fs.readdir(netnsDir) : [], [], 'no netns files');
    assert.equal((await run('ip', ['-o', 'link', 'show', 'master', NETWORK.bridge], { allowFailure: true })).stdout.trim(), '', 'no veth on the bridge');
    const ipam = `/var/lib/cni/networks/${NETWORK.name}`;
    assert.deepEqual(existsSync(ipam) ? (await fs.readdir(ipam)).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)) : [], [], 'no IPAM allocation');
    await waitFor(async () => (await processesIn(CGROUP_PARENT)).length === 0, { what: 'no pod process left' });
  } finally {
    if (process.env.CORRAL_FUZZ_VERBOSE) writeFileSync('/tmp/fz/daemon.log', d.logs());
    await d.cleanup();
    await removeNetwork(NETWORK);
    await removeCgroupTree(CGROUP_PARENT);
  }
  assert.deepEqual(await existingCgroupDirs(CGROUP_PARENT), [], 'no cgroup left');
});
