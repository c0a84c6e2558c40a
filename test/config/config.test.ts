import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'smol-toml';
import { ConfigError, defaults, flagSpecs, loadConfig } from '../../src/config/load';
import { applyReload } from '../../src/config/reload';
import { renderMarkdown, renderToml } from '../../src/config/template';

function tmp(files: Record<string, string>): { dir: string; file: string; done(): void } {
  const dir = mkdtempSync('/tmp/corral-cfg-');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return { dir, file: path.join(dir, 'corral.toml'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('defaults are the documented ones', () => {
  const d = defaults();
  assert.equal(d.socket, '/run/corral/corral.sock');
  assert.equal(d.root, '/var/lib/corral');
  assert.equal(d.run_root, '/run/corral');
  assert.equal(d.runtime.cgroup_manager, 'cgroupfs');
  assert.equal(d.runtime.handlers.runc.path, '/usr/sbin/runc');
  assert.equal(d.runtime.pause_image, '');
  assert.deepEqual(d.cni.plugin_dirs, ['/usr/lib/cni', '/opt/cni/bin']);
  assert.equal(d.metrics.address, '127.0.0.1:9537');
  assert.deepEqual(d.registries.unqualified_search, ['docker.io']);
});

test('file, then drop-ins in name order, then flags', () => {
  const t = tmp({
    'corral.toml': '[log]\nlevel = "warn"\n[runtime]\ncgroup_manager = "systemd"\n',
    'corral.toml.d/20-b.toml': '[log]\nlevel = "error"\n',
    'corral.toml.d/10-a.toml': '[log]\nlevel = "debug"\nformat = "json"\n[runtime.handlers.crun]\npath = "/usr/bin/crun"\n',
    'corral.toml.d/ignored.txt': 'not toml at all [',
  });
  try {
    const { config, sources } = loadConfig({ file: t.file, explicit: true, flags: { '--root': '/srv/corral' } });
    assert.equal(config.log.level, 'error', '20-b applied after 10-a');
    assert.equal(config.log.format, 'json');
    assert.equal(config.runtime.cgroup_manager, 'systemd');
    assert.equal(config.runtime.handlers.crun.path, '/usr/bin/crun');
    assert.equal(config.runtime.handlers.crun.type, 'oci', 'entry defaults filled in');
    assert.equal(config.runtime.handlers.runc.path, '/usr/sbin/runc', 'default handler kept');
    assert.equal(config.root, '/srv/corral');
    assert.deepEqual(sources.map((s) => path.basename(s)), ['corral.toml', '10-a.toml', '20-b.toml']);
  } finally {
    t.done();
  }
});

test('unknown keys, wrong types and malformed TOML name the file and key', () => {
  const cases: [string, RegExp][] = [
    ['[log]\nlevle = "debug"\n', /corral\.toml: log\.levle: unknown key/],
    ['[log]\nlevel = "loud"\n', /log\.level: expected one of "debug", "info", "warn", "error", got string "loud"/],
    ['shutdown_grace_seconds = "ten"\n', /shutdown_grace_seconds: expected an integer, got string/],
    ['[cni]\nconf_dirs = "/etc/cni/net.d"\n', /cni\.conf_dirs: expected an array of strings/],
    ['[metrics]\nenable = 1\n', /metrics\.enable: expected true or false/],
    ['root = "relative/path"\n', /root: expected an absolute path/],
    ['[runtime]\ndefault_handler = "kata"\n', /default_handler: "kata" is not in runtime\.handlers/],
    ['[log\nlevel = 1', /invalid TOML: line 1/],
  ];
  for (const [text, re] of cases) {
    const t = tmp({ 'corral.toml': text });
    try {
      assert.throws(() => loadConfig({ file: t.file, explicit: true }), (e: Error) => e instanceof ConfigError && re.test(e.message), `${text} → ${re}`);
    } finally {
      t.done();
    }
  }
});

test('an explicit config file must exist; the default one may be absent', () => {
  assert.throws(() => loadConfig({ file: '/nonexistent/corral.toml', explicit: true }), /config file not found/);
  assert.equal(loadConfig({ file: '/nonexistent/corral.toml' }).config.root, '/var/lib/corral');
});

test('flags are derived from the schema and typed', () => {
  const names = flagSpecs().map((f) => f.flag);
  for (const f of ['--socket', '--root', '--run-root', '--log-level', '--runtime-cgroup-manager', '--cni-conf-dirs', '--metrics-address', '--stream-port']) {
    assert.ok(names.includes(f), f);
  }
  assert.deepEqual(loadConfig({ file: '/nonexistent', flags: { '--cni-conf-dirs': '/a,/b' } }).config.cni.conf_dirs, ['/a', '/b']);
  assert.throws(() => loadConfig({ file: '/nonexistent', flags: { '--stream-port': 'x' } }), /flag --stream-port: expected an integer/);
  assert.throws(() => loadConfig({ file: '/nonexistent', flags: { '--stream-port': '70000' } }), /<= 65535/);
});

test('the rendered template is valid TOML that loads back to the same config', () => {
  const t = tmp({ 'corral.toml': '[log]\nlevel = "debug"\n[[registries.mirrors]]\nprefix = "registry.k8s.io"\nlocations = ["127.0.0.1:5000"]\n' });
  try {
    const { config } = loadConfig({ file: t.file, explicit: true });
    const text = renderToml(config);
    assert.match(text, /# Log level; debug logs every RPC/);
    assert.match(text, /level = "debug"  # default: "info"/);
    parse(text);
    writeFileSync(t.file, text);
    assert.deepEqual(loadConfig({ file: t.file, explicit: true }).config, config);
    const defaultsText = renderToml(defaults());
    writeFileSync(t.file, defaultsText);
    assert.deepEqual(loadConfig({ file: t.file, explicit: true }).config, defaults());
  } finally {
    t.done();
  }
});

test('markdown reference lists every leaf setting', () => {
  const md = renderMarkdown();
  for (const k of ['socket', 'runtime.cgroup_manager', 'runtime.handlers.<name>.path', 'registries.mirrors[].locations', 'stream.port', 'image.pinned_images']) {
    assert.ok(md.includes(`\`${k}\``), k);
  }
});

test('reload applies only reloadable settings and reports the rest', () => {
  const cur = defaults();
  const next = defaults();
  next.log.level = 'debug';
  next.registries.insecure = ['reg.local:5000'];
  next.root = '/elsewhere';
  const res = applyReload(cur, next);
  assert.equal(cur.log.level, 'debug');
  assert.deepEqual(cur.registries.insecure, ['reg.local:5000']);
  assert.equal(cur.root, '/var/lib/corral');
  assert.deepEqual(res.needRestart, ['root']);
  assert.equal(res.applied.length, 2);
});
