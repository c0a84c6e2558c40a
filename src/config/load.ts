import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { schema, type CorralConfig, type Section, type Setting } from './schema';

export const DEFAULT_CONFIG_FILE = '/etc/corral/corral.toml';

/** A configuration problem: one line naming the file, the key and what was expected. */
export class ConfigError extends Error {}

type Obj = Record<string, unknown>;

/** The defaults, as a fresh object. */
export function defaults(): CorralConfig {
  return sectionDefaults(schema) as unknown as CorralConfig;
}

function sectionDefaults(sec: Section): Obj {
  const out: Obj = {};
  for (const [k, s] of Object.entries(sec)) out[k] = s.kind === 'section' ? sectionDefaults(s.section) : structuredClone(s.default);
  return out;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a table';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Checks one value against its setting and returns it normalised; throws ConfigError otherwise. */
function checkValue(s: Setting, v: unknown, where: string): unknown {
  const bad = (expected: string) => new ConfigError(`${where}: expected ${expected}, got ${describe(v)}`);
  switch (s.kind) {
    case 'string':
      if (typeof v !== 'string') throw bad('a string');
      return v;
    case 'int': {
      const n = typeof v === 'bigint' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw bad('an integer');
      if (s.min !== undefined && n < s.min) throw bad(`an integer >= ${s.min}`);
      if (s.max !== undefined && n > s.max) throw bad(`an integer <= ${s.max}`);
      return n;
    }
    case 'bool':
      if (typeof v !== 'boolean') throw bad('true or false');
      return v;
    case 'enum':
      if (typeof v !== 'string' || !s.values.includes(v)) throw bad(`one of ${s.values.map((x) => JSON.stringify(x)).join(', ')}`);
      return v;
    case 'list':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad('an array of strings');
      return [...v];
    case 'map': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('a table of tables');
      const out: Obj = {};
      for (const [name, entry] of Object.entries(v as Obj)) {
        const base = sectionDefaults(s.entry);
        out[name] = mergeSection(base, s.entry, entry, `${where}.${name}`);
      }
      return out;
    }
    case 'tables': {
      if (!Array.isArray(v)) throw bad('an array of tables');
      return v.map((entry, i) => mergeSection(sectionDefaults(s.entry), s.entry, entry, `${where}[${i}]`));
    }
    case 'section':
      throw new Error('unreachable');
  }
}

/** Merges a raw TOML table onto target following sec; unknown keys and wrong types are errors. */
function mergeSection(target: Obj, sec: Section, raw: unknown, where: string): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: expected a table, got ${describe(raw)}`);
  }
  for (const [k, v] of Object.entries(raw as Obj)) {
    const s = sec[k];
    const at = where.endsWith(':') ? `${where} ${k}` : `${where}.${k}`;
    if (!s) throw new ConfigError(`${at}: unknown key (known here: ${Object.keys(sec).join(', ')})`);
    if (s.kind === 'section') {
      mergeSection(target[k] as Obj, s.section, v, at);
    } else if (s.kind === 'map') {
      // Entries named again in a later file are merged; new names are added.
      const checked = checkValue(s, v, at) as Obj;
      const cur = target[k] as Obj;
      for (const [name, entry] of Object.entries(v as Obj)) {
        cur[name] = cur[name] ? mergeSection(cur[name] as Obj, s.entry, entry, `${at}.${name}`) : checked[name];
      }
    } else {
      target[k] = checkValue(s, v, at);
    }
  }
  return target;
}

function parseFile(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    return parseToml(text) as Obj;
  } catch (e) {
    const msg = e instanceof TomlError ? `line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}` : (e as Error).message;
    throw new ConfigError(`${file}: invalid TOML: ${msg}`);
  }
}

/** A flag derived from a setting: key path joined with '-', underscores as dashes. */
export interface FlagSpec {
  flag: string;
  path: string[];
  setting: Setting;
}

export function flagSpecs(): FlagSpec[] {
  const out: FlagSpec[] = [];
  const walk = (sec: Section, prefix: string[]) => {
    for (const [k, s] of Object.entries(sec)) {
      if (s.kind === 'section') walk(s.section, [...prefix, k]);
      else if ('flag' in s && s.flag) out.push({ flag: '--' + [...prefix, k].join('-').replace(/_/g, '-'), path: [...prefix, k], setting: s });
    }
  };
  walk(schema, []);
  return out;
}

/** Converts a flag's string value to the setting's type. */
function flagValue(spec: FlagSpec, raw: string): unknown {
  const where = `flag ${spec.flag}`;
  switch (spec.setting.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${where}: expected an integer, got ${JSON.stringify(raw)}`);
      return checkValue(spec.setting, Number(raw), where);
    }
    case 'bool':
      if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
      return raw === 'true';
    case 'list':
      return raw === '' ? [] : raw.split(',').map((x) => x.trim());
    default:
      return checkValue(spec.setting, raw, where);
  }
}

export interface LoadOptions {
  /** Main config file; when undefined the default path is used if it exists. */
  file?: string;
  /** Whether `file` was asked for explicitly (then it must exist). */
  explicit?: boolean;
  /** Flag overrides: flag name (e.g. "--log-level") → raw string value. */
  flags?: Record<string, string>;
}

export interface LoadedConfig {
  config: CorralConfig;
  /** Files read, in the order applied. */
  sources: string[];
}

/** defaults → main file → drop-ins (<file>.d/*.toml, name order) → flags; then semantic checks. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const cfg = defaults() as unknown as Obj;
  const sources: string[] = [];
  const file = opts.file ?? DEFAULT_CONFIG_FILE;
  let exists = false;
  try {
    exists = statSync(file).isFile();
  } catch {
    exists = false;
  }
  if (!exists && opts.explicit) throw new ConfigError(`${file}: config file not found`);
  if (exists) {
    mergeSection(cfg, schema, parseFile(file), `${file}:`);
    sources.push(file);
  }
  const dropDir = `${file}.d`;
  let drops: string[] = [];
  try {
    drops = readdirSync(dropDir).filter((n) => n.endsWith('.toml')).sort();
  } catch {
    drops = [];
  }
  for (const name of drops) {
    const f = path.join(dropDir, name);
    mergeSection(cfg, schema, parseFile(f), `${f}:`);
    sources.push(f);
  }
  const specs = new Map(flagSpecs().map((s) => [s.flag, s]));
  for (const [flag, raw] of Object.entries(opts.flags ?? {})) {
    const spec = specs.get(flag);
    if (!spec) throw new ConfigError(`unknown flag ${flag}`);
    let t = cfg;
    for (const p of spec.path.slice(0, -1)) t = t[p] as Obj;
    t[spec.path[spec.path.length - 1]] = flagValue(spec, raw);
  }
  const config = cfg as unknown as CorralConfig;
  validate(config);
  return { config, sources };
}

/** Semantic checks that need more than one value's type. Pure: touches nothing. */
export function validate(c: CorralConfig): void {
  const abs = (v: string, key: string) => {
    if (!path.isAbsolute(v)) throw new ConfigError(`${key}: expected an absolute path, got ${JSON.stringify(v)}`);
  };
  abs(c.socket, 'socket');
  abs(c.root, 'root');
  abs(c.run_root, 'run_root');
  abs(c.runtime.conmon, 'runtime.conmon');
  abs(c.runtime.catatonit, 'runtime.catatonit');
  for (const d of c.cni.conf_dirs) abs(d, 'cni.conf_dirs');
  for (const d of c.cni.plugin_dirs) abs(d, 'cni.plugin_dirs');
  if (Buffer.byteLength(c.socket) > 107) throw new ConfigError(`socket: path longer than 107 bytes: ${c.socket}`);
  if (!c.runtime.handlers[c.runtime.default_handler]) {
    throw new ConfigError(`runtime.default_handler: "${c.runtime.default_handler}" is not in runtime.handlers (${Object.keys(c.runtime.handlers).join(', ') || 'none'})`);
  }
  for (const [name, h] of Object.entries(c.runtime.handlers)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new ConfigError(`runtime.handlers.${name}: invalid handler name`);
    abs(h.path, `runtime.handlers.${name}.path`);
    if (h.root) abs(h.root, `runtime.handlers.${name}.root`);
  }
  if (c.listen_tcp) parseHostPort(c.listen_tcp, 'listen_tcp');
  if (c.metrics.enable) parseHostPort(c.metrics.address, 'metrics.address');
  if (!!c.metrics.tls_cert !== !!c.metrics.tls_key) throw new ConfigError('metrics: tls_cert and tls_key must be set together');
  if (!!c.stream.tls_cert !== !!c.stream.tls_key) throw new ConfigError('stream: tls_cert and tls_key must be set together');
  for (const [i, m] of c.registries.mirrors.entries()) {
    if (!m.prefix) throw new ConfigError(`registries.mirrors[${i}].prefix: must not be empty`);
    if (m.locations.length === 0) throw new ConfigError(`registries.mirrors[${i}].locations: must name at least one mirror`);
  }
}

/** Splits "host:port" ("[::1]:9537" for IPv6). */
export function parseHostPort(v: string, key: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${key}: expected host:port, got ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2] ?? '', port };
}

/** Handler root with its default filled in. */
export function handlerRoot(c: CorralConfig, name: string): string {
  const h = c.runtime.handlers[name];
  return h?.root || path.join(c.run_root, 'runtimes', name);
}
