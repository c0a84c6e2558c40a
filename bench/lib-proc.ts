/** /proc readers for the memory figures: RSS of a daemon, PSS of helper processes found by their command line. */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';

/** VmRSS of a process in MiB (undefined when it is gone). */
export async function rssMiB(pid: number): Promise<number | undefined> {
  const s = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const m = s && /^VmRSS:\s+(\d+) kB/m.exec(s);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** PSS of a process in MiB from smaps_rollup (undefined when it is gone). */
export async function pssMiB(pid: number): Promise<number | undefined> {
  const s = await fs.readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => undefined);
  const m = s && /^Pss:\s+(\d+) kB/m.exec(s);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** Pids whose argv[0] basename is `comm` and whose command line matches `test`. */
export async function findProcesses(comm: string, test: (argv: string[]) => boolean): Promise<number[]> {
  const pids: number[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const raw = await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (!raw) continue;
    const argv = raw.split('\0').filter((a) => a !== '');
    if (argv.length === 0 || argv[0].split('/').pop() !== comm) continue;
    if (test(argv)) pids.push(Number(e));
  }
  return pids;
}

/** Sum of PSS (MiB) and the count of the given processes. */
export async function sumPss(pids: number[]): Promise<{ count: number; pssMiB: number }> {
  let total = 0;
  let count = 0;
  for (const p of pids) {
    const v = await pssMiB(p);
    if (v !== undefined) {
      total += v;
      count++;
    }
  }
  return { count, pssMiB: total };
}

/**
 * Runs a command with stdio on /dev/null and a 30 s deadline: a detached container started by it would
 * otherwise hold our pipes open. For floors that start containers directly.
 */
export function runQuiet(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: 'ignore' });
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('error', reject);
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')}: exit ${code}`));
    });
  });
}
