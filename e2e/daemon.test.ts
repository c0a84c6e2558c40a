import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { criClients } from './harness/cri-client';
import { CORRAL_MAIN, startDaemon } from './harness/daemon';
import { waitFor } from '../src/core/wait';

test('Version, Status, RuntimeConfig and UpdateRuntimeConfig over the unix socket', async () => {
  const d = await startDaemon();
  try {
    const v = await d.rt.Version({ version: '0.1.0' });
    assert.equal(v.runtime_name, 'corral');
    assert.equal(v.runtime_api_version, 'v1');
    assert.equal(v.runtime_version, require('../../package.json').version);

    const st = await d.rt.Status({ verbose: true });
    const cond = Object.fromEntries(st.status!.conditions.map((c) => [c.type, c]));
    assert.equal(cond.RuntimeReady.status, true);
    assert.equal(typeof cond.NetworkReady.status, 'boolean');
    if (!cond.NetworkReady.status) assert.equal(cond.NetworkReady.reason, 'NetworkPluginNotReady');
    const cfg = JSON.parse(st.info.config);
    assert.equal(cfg.root, d.root, 'verbose info carries the effective config');
    assert.equal((await d.rt.Status({})).info.config, undefined, 'info only when verbose');

    const rc = await d.rt.RuntimeConfig({});
    assert.equal(rc.linux!.cgroup_driver, 'CGROUPFS');

    await d.rt.UpdateRuntimeConfig({ runtime_config: { network_config: { pod_cidr: '10.244.1.0/24' } } });
    assert.equal((await d.rt.Status({ verbose: true })).info.podCIDR, '10.244.1.0/24');
    await assert.rejects(d.rt.UpdateRuntimeConfig({ runtime_config: { network_config: { pod_cidr: 'not-a-cidr' } } }), (e: { code: number }) => e.code === 3);

    const mode = statSync(d.socket);
    assert.ok(mode.isSocket());
    assert.equal(mode.mode & 0o777, 0o660);
    assert.equal(mode.uid, 0);

    // The pod CIDR survives a restart.
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
    assert.equal(existsSync(d.socket), false, 'socket removed on clean shutdown');
    await d.start();
    assert.equal((await d.rt.Status({ verbose: true })).info.podCIDR, '10.244.1.0/24');
  } finally {
    await d.cleanup();
  }
});

test('a second daemon on the same root refuses to start; a stale socket after kill -9 is replaced', async () => {
  const d = await startDaemon();
  try {
    const other = spawnSync(process.execPath, [CORRAL_MAIN, '--config', d.configFile, '--socket', path.join(d.dir, 'other.sock')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(other.status, 1);
    assert.match(other.stderr, /another corral daemon \(pid \d+\) is already using root/);
    assert.equal(other.stderr.trim().split('\n').length, 1, 'one clear line');

    await d.stop('SIGKILL');
    assert.ok(statSync(d.socket).isSocket(), 'kill -9 leaves the socket behind');
    await d.start();
    assert.equal((await d.rt.Version({})).runtime_name, 'corral');
  } finally {
    await d.cleanup();
  }
});

test('SIGHUP reloads reloadable settings and logs what changed', async () => {
  const d = await startDaemon({ logLevel: 'info' });
  try {
    mkdirSync(`${d.configFile}.d`, { recursive: true });
    writeFileSync(path.join(`${d.configFile}.d`, '90-reload.toml'), '[log]\nlevel = "debug"\n[registries]\ninsecure = ["reg.example:5000"]\n');
    process.kill(d.pid()!, 'SIGHUP');
    await waitFor(() => /SIGHUP: setting changed change="log\.level: \\"info\\" → \\"debug\\""/.test(d.logs()), { what: 'reload log line' });
    assert.match(d.logs(), /registries\.insecure/);
    await d.rt.Version({});
    await waitFor(() => /DEBUG rpc .*method=Version/.test(d.logs()), { what: 'debug RPC log after reload' });
  } finally {
    await d.cleanup();
  }
});

test('TCP is served only when configured; metrics are served on their address', async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const d = await startDaemon({ config: `listen_tcp = "127.0.0.1:${port}"\n` });
  try {
    const tcp = criClients(`127.0.0.1:${port}`);
    assert.equal((await tcp.rt.Version({})).runtime_name, 'corral');
    tcp.rt.close();
    tcp.img.close();
    const res = await fetch(`http://${d.metricsAddress()}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /corral_cri_operations_total\{operation="Version",code="OK"\}/);
    assert.match(text, /process_resident_memory_bytes/);
  } finally {
    await d.cleanup();
  }
});

function runCorral(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CORRAL_MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('bad start-up input stops with one clear line and exit code 1', () => {
  const dir = mkdtempSync('/tmp/corral-bad-');
  try {
    const base = ['--root', path.join(dir, 'root'), '--run-root', path.join(dir, 'run'), '--socket', path.join(dir, 's.sock'), '--metrics-enable', 'false'];
    const write = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const cases: [string[], RegExp][] = [
      [['--config', write('bad.toml', '[log\n')], /configuration error: .*bad\.toml: invalid TOML/],
      [['--config', write('unknown.toml', 'colour = "blue"\n')], /unknown\.toml: colour: unknown key/],
      [['--config', write('type.toml', '[stream]\nport = "80"\n')], /stream\.port: expected an integer/],
      [['--config', write('runc.toml', '[runtime.handlers.runc]\npath = "/nonexistent/runc"\n')], /runtime handler "runc": \/nonexistent\/runc not found/],
      [['--root', path.join(write('afile', ''), 'root')], /root .* is not writable/],
      [['--socket', write('notasocket', 'x')], /exists and is not a socket/],
    ];
    for (const [args, re] of cases) {
      const r = runCorral([...base, ...args]);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: version, config, check, help and usage errors', () => {
  const v = runCorral(['version', '--json']);
  assert.equal(v.status, 0);
  assert.equal(JSON.parse(v.stdout).name, 'corral');
  const c = runCorral(['config', '--default']);
  assert.equal(c.status, 0);
  assert.match(c.stdout, /^socket = "\/run\/corral\/corral\.sock"$/m);
  const eff = runCorral(['config', '--log-level', 'debug']);
  assert.match(eff.stdout, /^level = "debug"  # default: "info"$/m);
  const chk = runCorral(['check']);
  assert.match(chk.stdout, /^ok {6}runtime handler runc:/m);
  assert.match(chk.stdout, /^ok {6}conmon:/m);
  assert.equal(chk.status, 0, chk.stdout);
  const h = runCorral(['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /Usage: corral/);
  assert.equal(runCorral(['frobnicate']).status, 2);
  assert.equal(runCorral(['--no-such-flag']).status, 2);
});

test('wipe refuses while the daemon runs and removes everything after', async () => {
  const d = await startDaemon();
  try {
    const refused = runCorral(['wipe', '--config', d.configFile]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /daemon \(pid \d+\) is running/);
    await d.stop();
    const ok = runCorral(['wipe', '--config', d.configFile]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(existsSync(d.root), false);
    assert.equal(existsSync(d.runRoot), false);
  } finally {
    await d.cleanup();
  }
});

test('systemd readiness: READY=1 once serving, STOPPING=1 on SIGTERM', { skip: !existsSync('/usr/bin/python3') || !existsSync('/usr/bin/systemd-notify') ? 'needs python3 and systemd-notify' : false }, async () => {
  const dir = mkdtempSync('/tmp/corral-notify-');
  const sock = path.join(dir, 'notify.sock');
  const { spawn } = await import('node:child_process');
  // A datagram listener (Node has no unix datagram sockets) that prints each message on one line.
  const listener = spawn('/usr/bin/python3', ['-u', '-c', `
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(${JSON.stringify(sock)})
print("bound", flush=True)
while True:
    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)
`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  listener.stdout.on('data', (b: Buffer) => (got += b.toString()));
  try {
    await waitFor(() => got.includes('bound'), { what: 'notify listener' });
    const d = await startDaemon({ env: { NOTIFY_SOCKET: sock } });
    try {
      await waitFor(() => /READY=1/.test(got), { what: 'READY=1' });
      assert.match(got, new RegExp(`MAINPID=${d.pid()}\\|READY=1`));
      await d.stop();
      await waitFor(() => /STOPPING=1/.test(got), { what: 'STOPPING=1' });
    } finally {
      await d.cleanup();
    }
  } finally {
    listener.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
