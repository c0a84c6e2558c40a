import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createRuntimeMetrics } from '../../src/metrics/runtime';

/** Parses the text exposition into HELP/TYPE per family and samples (name, labels, value). */
function parse(text: string) {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) help.set(m[1], m[2]);
    else if ((m = /^# TYPE (\S+) (\S+)$/.exec(line))) type.set(m[1], m[2]);
    else if ((m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line))) {
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
  }
  return { help, type, samples };
}

const EXPECTED: [string, string, string[]][] = [
  ['corral_containers_created_total', 'counter', []],
  ['corral_containers_started_total', 'counter', []],
  ['corral_containers_failed_total', 'counter', ['reason']],
  ['corral_container_oom_kills_total', 'counter', []],
  ['corral_containers', 'gauge', ['state']],
  ['corral_pods', 'gauge', ['state']],
  ['corral_cni_operation_duration_seconds', 'histogram', ['operation']],
  ['corral_cni_operation_failures_total', 'counter', ['operation']],
  ['corral_oci_runtime_operation_duration_seconds', 'histogram', ['operation', 'binary']],
  ['corral_oci_runtime_operation_failures_total', 'counter', ['operation', 'binary']],
  ['corral_streaming_sessions', 'gauge', ['kind']],
];

test('a fresh registry exposes every runtime metric with its type and help', async () => {
  const reg = new Registry();
  createRuntimeMetrics(reg);
  const { help, type } = parse(await reg.metrics());
  for (const [name, t] of EXPECTED) {
    assert.equal(type.get(name), t, name);
    assert.ok((help.get(name) ?? '').length > 10, `help of ${name}`);
    assert.match(name, /^corral_/);
  }
  // Only ours: nothing else was registered.
  assert.deepEqual([...type.keys()].sort(), EXPECTED.map((e) => e[0]).sort());
});

test('labels of recorded samples, state gauges from callbacks, timed operations and sessions', async () => {
  const reg = new Registry();
  const m = createRuntimeMetrics(reg);
  m.containersCreated.inc();
  m.containersStarted.inc(2);
  m.containersFailed.inc({ reason: 'runc' });
  m.containerOomKills.inc();
  let running = 3;
  m.setContainerStates(() => ({ running, exited: 1, paused: 1 }));
  m.setPodStates(() => ({ ready: 2 }));
  assert.equal(await m.timeCni('ADD', async () => 'ok'), 'ok');
  await assert.rejects(m.timeCni('DEL', async () => { throw new Error('plugin failed'); }), /plugin failed/);
  await m.timeOci('create', 'runc', async () => undefined);
  await assert.rejects(m.timeOci('start', 'conmon', async () => { throw new Error('x'); }));
  const done = m.openStreamingSession('exec');
  m.openStreamingSession('exec');
  m.openStreamingSession('portforward');
  done();
  done();

  const { samples } = parse(await reg.metrics());
  const get = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(get('corral_containers_created_total')[0].value, 1);
  assert.equal(get('corral_containers_started_total')[0].value, 2);
  assert.equal(get('corral_containers_failed_total', { reason: 'runc' })[0].value, 1);
  assert.equal(get('corral_container_oom_kills_total')[0].value, 1);
  assert.equal(get('corral_containers', { state: 'running' })[0].value, 3);
  assert.equal(get('corral_containers', { state: 'created' })[0].value, 0, 'known states always present');
  assert.equal(get('corral_containers', { state: 'paused' })[0].value, 1, 'other states passed through');
  assert.equal(get('corral_pods', { state: 'ready' })[0].value, 2);
  assert.equal(get('corral_pods', { state: 'notready' })[0].value, 0);
  assert.equal(get('corral_cni_operation_duration_seconds_count', { operation: 'ADD' })[0].value, 1);
  assert.equal(get('corral_cni_operation_duration_seconds_count', { operation: 'DEL' })[0].value, 1);
  assert.ok(get('corral_cni_operation_duration_seconds_bucket', { operation: 'ADD', le: '+Inf' }).length === 1);
  assert.equal(get('corral_cni_operation_failures_total', { operation: 'DEL' })[0].value, 1);
  assert.equal(get('corral_cni_operation_failures_total', { operation: 'ADD' }).length, 0);
  assert.equal(get('corral_oci_runtime_operation_duration_seconds_count', { operation: 'create', binary: 'runc' })[0].value, 1);
  assert.equal(get('corral_oci_runtime_operation_failures_total', { operation: 'start', binary: 'conmon' })[0].value, 1);
  assert.equal(get('corral_streaming_sessions', { kind: 'exec' })[0].value, 1, 'done() is idempotent');
  assert.equal(get('corral_streaming_sessions', { kind: 'portforward' })[0].value, 1);

  // The gauge is collected at scrape time, and a throwing source does not break the scrape.
  running = 7;
  assert.equal(parse(await reg.metrics()).samples.find((s) => s.name === 'corral_containers' && s.labels.state === 'running')?.value, 7);
  m.setContainerStates(() => { throw new Error('store not ready'); });
  const after = parse(await reg.metrics()).samples.filter((s) => s.name === 'corral_containers');
  assert.ok(after.length >= 4 && after.every((s) => s.value === 0));
});

test('two daemons (registries) do not share metrics; no registry means unregistered objects', async () => {
  const a = new Registry();
  const b = new Registry();
  const ma = createRuntimeMetrics(a);
  createRuntimeMetrics(b);
  ma.containersCreated.inc();
  assert.match(await a.metrics(), /corral_containers_created_total 1/);
  assert.match(await b.metrics(), /corral_containers_created_total 0/);
  const loose = createRuntimeMetrics();
  loose.containersCreated.inc();
  assert.equal((await loose.containersCreated.get()).values[0].value, 1);
});
