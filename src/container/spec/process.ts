import { constants, hostname as osHostname } from 'node:os';
import * as path from 'node:path';
import { invalidArgument } from '../../core/errors';
import { DEFAULT_PATH_ENV } from './defaults';
import type { ImageProcessConfig } from './input';
import type { SpecOpt } from './opts';

/**
 * Docker's rules: a request command replaces the image Entrypoint and drops the image Cmd;
 * request args replace the image Cmd.
 */
export function mergeCommand(image: ImageProcessConfig, command: readonly string[] = [], args: readonly string[] = []): string[] {
  let argv: string[];
  if (command.length > 0) argv = [...command, ...args];
  else argv = [...(image.Entrypoint ?? []), ...(args.length > 0 ? args : image.Cmd ?? [])];
  if (argv.length === 0) throw invalidArgument('no command specified: the request has no command/args and the image no Entrypoint/Cmd');
  return argv;
}

const envKey = (e: string) => {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
};

/** Replaces entries with the same key in place, appends new ones (containerd's replaceOrAppendEnvValues). */
export function replaceOrAppendEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(envKey(e), i));
  for (const e of overrides) {
    const k = envKey(e);
    const at = index.get(k);
    if (at !== undefined) out[at] = e;
    else {
      index.set(k, out.length);
      out.push(e);
    }
  }
  return out;
}

/** Default PATH, then the image's env, then HOSTNAME, then the request's envs (later ones win by key). */
export function mergeEnv(image: ImageProcessConfig, hostname: string, envs: readonly { key: string; value: string }[] = []): string[] {
  for (const { key } of envs) {
    if (!key || key.includes('=')) throw invalidArgument(`invalid environment variable name ${JSON.stringify(key)}`);
    if (key.includes('\0')) throw invalidArgument('environment variable name contains a NUL byte');
  }
  let env = replaceOrAppendEnv([DEFAULT_PATH_ENV], image.Env ?? []);
  if (hostname) env = replaceOrAppendEnv(env, [`HOSTNAME=${hostname}`]);
  return replaceOrAppendEnv(env, envs.map(({ key, value }) => `${key}=${value}`));
}

export function resolveWorkingDir(image: ImageProcessConfig, requested?: string): string {
  const cwd = requested || image.WorkingDir || '/';
  if (!path.posix.isAbsolute(cwd)) throw invalidArgument(`working directory ${JSON.stringify(cwd)} must be an absolute path`);
  return path.posix.normalize(cwd).replace(/(.)\/+$/, '$1');
}

/** A signal name in SIGXXX form from "SIGTERM", "TERM" or "15"; undefined if unknown. */
export function normalizeSignal(sig: string): string | undefined {
  const s = sig.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
  }
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  return name in constants.signals ? name : undefined;
}

/** Request stop signal, else the image's, else SIGTERM. */
export function resolveStopSignal(image: ImageProcessConfig, requested?: string): string {
  if (requested && requested !== 'RUNTIME_DEFAULT') {
    const s = normalizeSignal(requested);
    if (!s) throw invalidArgument(`unknown stop signal ${JSON.stringify(requested)}`);
    return s;
  }
  if (image.StopSignal) {
    const s = normalizeSignal(image.StopSignal);
    if (!s) throw invalidArgument(`image has an unknown stop signal ${JSON.stringify(image.StopSignal)}`);
    return s;
  }
  return 'SIGTERM';
}

export const withProcess: SpecOpt = (s, ctx) => {
  const i = ctx.input;
  s.process.args = mergeCommand(i.image, i.command, i.args);
  // Host-network pods have no hostname of their own: HOSTNAME is the node's, as in containerd.
  s.process.env = mergeEnv(i.image, i.pod.hostname || osHostname(), i.envs);
  s.process.cwd = resolveWorkingDir(i.image, i.workingDir);
  s.process.terminal = !!i.tty;
  ctx.stopSignal = resolveStopSignal(i.image, i.stopSignal);
};
