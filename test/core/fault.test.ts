import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseFaultPoints } from '../../src/core/fault';

// The compiled module, required by a child process that calls fault points in order.
const FAULT_JS = path.join(__dirname, '..', '..', 'src', 'core', 'fault.js');

function runChild(env: string | undefined, points: string[]) {
  const script = [
    `const { faultPoint } = require(${JSON.stringify(FAULT_JS)});`,
    `let finallyRan = false;`,
    `process.on('exit', () => process.stdout.write('exit-handler\\n'));`,
    `try {`,
    ...points.map((p) => `  faultPoint(${JSON.stringify(p)}); process.stdout.write('passed ${p}\\n');`),
    `} finally { process.stdout.write('finally\\n'); }`,
  ].join('\n');
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.CORRAL_FAULT_POINT;
  if (env !== undefined) childEnv.CORRAL_FAULT_POINT = env;
  return spawnSync(process.execPath, ['-e', script], { env: childEnv, encoding: 'utf8', timeout: 20_000 });
}

test('parseFaultPoints: unset, single, comma list with blanks', () => {
  assert.equal(parseFaultPoints(undefined).size, 0);
  assert.equal(parseFaultPoints('').size, 0);
  assert.deepEqual([...parseFaultPoints('a.b')], ['a.b']);
  assert.deepEqual([...parseFaultPoints(' a , b,,c ')], ['a', 'b', 'c']);
});

test('faultPoint is a no-op when CORRAL_FAULT_POINT is unset', () => {
  const r = runChild(undefined, ['sandbox.a', 'sandbox.b']);
  assert.equal(r.status, 0);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, 'passed sandbox.a\npassed sandbox.b\nfinally\nexit-handler\n');
  assert.equal(r.stderr, '');
});

test('faultPoint dies by SIGKILL at the named point: no finally, no exit handlers', () => {
  const r = runChild('sandbox.b', ['sandbox.a', 'sandbox.b', 'sandbox.c']);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.status, null);
  assert.equal(r.stdout, 'passed sandbox.a\n', 'nothing after the point ran');
  assert.equal(r.stderr, 'fault point sandbox.b: exiting\n');
});

test('faultPoint matches any name of a comma list, and only whole names', () => {
  const r = runChild('x.y, sandbox.c', ['sandbox', 'sandbox.c.more', 'sandbox.c']);
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.stdout, 'passed sandbox\npassed sandbox.c.more\n');
  assert.match(r.stderr, /^fault point sandbox\.c: exiting\n$/);
});
