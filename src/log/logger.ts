import { AsyncLocalStorage } from 'node:async_hooks';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type Fields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Request-scoped fields (request id, RPC method) carried across awaits. */
export const logContext = new AsyncLocalStorage<Fields>();

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
  enabled(level: LogLevel): boolean;
}

/** Level and format are shared by a logger and all its children, so a SIGHUP reload changes them all. */
export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
}

export function createLogger(
  settings: LogSettings,
  write: (line: string) => void = (l) => process.stderr.write(l),
  base: Fields = {},
): Logger {
  const emit = (level: LogLevel, msg: string, fields?: Fields) => {
    if (RANK[level] < RANK[settings.level]) return;
    const all = { ...base, ...logContext.getStore(), ...fields };
    const time = new Date().toISOString();
    if (settings.format === 'json') {
      write(JSON.stringify({ time, level, msg, ...all }, jsonSafe) + '\n');
    } else {
      const kv = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${fmt(v)}`)
        .join(' ');
      write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}\n`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(settings, write, { ...base, ...f }),
    enabled: (level) => RANK[level] >= RANK[settings.level],
  };
}

function jsonSafe(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return v.message;
  return v;
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v, jsonSafe);
  return String(v);
}

/** A logger that drops everything: for unit tests and CLI paths that must stay quiet. */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
  enabled() {
    return false;
  },
};
