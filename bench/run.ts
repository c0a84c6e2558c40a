import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * `make bench`: runs every benchmark in bench/ (each a standalone script printing its own table and
 * a JSON line prefixed "RESULT ") and collects the results under bench/results/.
 */
const here = __dirname;
const only = process.argv.slice(2);
const scripts = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('lib'))
  .filter((f) => only.length === 0 || only.includes(path.basename(f, '.js')))
  .sort();
const resultsDir = path.join(here, '..', '..', 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const all: Record<string, unknown> = {};
let failed = 0;
for (const s of scripts) {
  const name = path.basename(s, '.js');
  process.stdout.write(`\n=== bench/${name} ===\n`);
  const r = spawnSync(process.execPath, [path.join(here, s)], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const lines = (r.stdout ?? '').split('\n');
  for (const l of lines) if (!l.startsWith('RESULT ')) process.stdout.write(l + '\n');
  const result = lines.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
  all[name] = { exitCode: r.status, results: result };
  if (r.status !== 0) failed++;
}
const file = path.join(resultsDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), benches: all }, null, 2) + '\n');
writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), benches: all }, null, 2) + '\n');
process.stdout.write(`\nresults written to ${file}\n`);
process.exit(failed > 0 ? 1 : 0);
