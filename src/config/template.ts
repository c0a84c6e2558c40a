import { schema, type CorralConfig, type Section, type Setting } from './schema';
import { defaults } from './load';

type Obj = Record<string, unknown>;

function tomlValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  return String(v);
}

function comment(doc: string): string[] {
  return doc.split('\n').map((l) => `# ${l}`);
}

function isTable(s: Setting): boolean {
  return s.kind === 'section' || s.kind === 'map' || s.kind === 'tables';
}

/**
 * Renders a configuration as commented TOML: every setting with its documentation and default.
 * Settings equal to their default are still written, so the output is a complete reference.
 */
export function renderToml(cfg: CorralConfig, header = true): string {
  const lines: string[] = [];
  if (header) {
    lines.push('# corral configuration (/etc/corral/corral.toml).', '# Drop-ins in /etc/corral/corral.toml.d/*.toml are applied in name order; flags override both.', '');
  }
  renderSection(lines, schema, cfg as unknown as Obj, defaults() as unknown as Obj, []);
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

function renderScalar(lines: string[], key: string, s: Setting, v: unknown, d: unknown): void {
  lines.push(...comment(s.doc));
  if (s.kind === 'enum') lines.push(`# one of: ${s.values.join(', ')}`);
  const same = JSON.stringify(v) === JSON.stringify(d);
  lines.push(`${key} = ${tomlValue(v)}${same ? '' : `  # default: ${tomlValue(d)}`}`);
  lines.push('');
}

function renderSection(lines: string[], sec: Section, v: Obj, d: Obj, at: string[]): void {
  for (const [k, s] of Object.entries(sec)) if (!isTable(s)) renderScalar(lines, k, s, v[k], d[k]);
  for (const [k, s] of Object.entries(sec)) {
    const p = [...at, k];
    if (s.kind === 'section') {
      lines.push(...comment(s.doc), `[${p.join('.')}]`, '');
      renderSection(lines, s.section, v[k] as Obj, d[k] as Obj, p);
    } else if (s.kind === 'map') {
      lines.push(...comment(s.doc));
      for (const [name, entry] of Object.entries(v[k] as Obj)) {
        lines.push(`[${[...p, name].join('.')}]`);
        const entryDefaults = (d[k] as Obj)[name] ?? Object.fromEntries(Object.entries(s.entry).map(([ek, es]) => [ek, 'default' in es ? es.default : undefined]));
        renderSection(lines, s.entry, entry as Obj, entryDefaults as Obj, [...p, name]);
      }
    } else if (s.kind === 'tables') {
      lines.push(...comment(s.doc));
      const entries = v[k] as Obj[];
      if (entries.length === 0) {
        lines.push(`# [[${p.join('.')}]]`);
        for (const [ek, es] of Object.entries(s.entry)) lines.push(`# ${ek} = ${tomlValue('default' in es ? es.default : '')}  # ${es.doc}`);
        lines.push('');
      }
      for (const entry of entries) {
        lines.push(`[[${p.join('.')}]]`);
        for (const [ek, es] of Object.entries(s.entry)) lines.push(`${ek} = ${tomlValue(entry[ek])}  # ${es.doc}`);
        lines.push('');
      }
    }
  }
}

/** Markdown table of every setting, for the README. */
export function renderMarkdown(): string {
  const rows: string[] = ['| setting | default | flag | reload on SIGHUP | meaning |', '|---|---|---|---|---|'];
  const walk = (sec: Section, at: string[]) => {
    for (const [k, s] of Object.entries(sec)) {
      const p = [...at, k];
      if (s.kind === 'section') {
        walk(s.section, p);
        continue;
      }
      const key = `\`${p.join('.')}\``;
      const def = s.kind === 'map' || s.kind === 'tables' ? `\`${JSON.stringify(s.default)}\`` : `\`${tomlValue(s.default)}\``;
      const flag = 'flag' in s && s.flag ? `\`--${p.join('-').replace(/_/g, '-')}\`` : '';
      const extra = s.kind === 'enum' ? ` One of ${s.values.map((x) => `\`${x}\``).join(', ')}.` : '';
      rows.push(`| ${key} | ${def.replace(/\|/g, '\\|')} | ${flag} | ${s.reload ? 'yes' : ''} | ${s.doc.replace(/\|/g, '\\|')}${extra} |`);
      if (s.kind === 'map' || s.kind === 'tables') {
        for (const [ek, es] of Object.entries(s.entry)) {
          const ed = 'default' in es ? `\`${tomlValue(es.default)}\`` : '';
          rows.push(`| \`${p.join('.')}${s.kind === 'map' ? '.<name>' : '[]'}.${ek}\` | ${ed} |  | ${s.reload ? 'yes' : ''} | ${es.doc} |`);
        }
      }
    }
  };
  walk(schema, []);
  return rows.join('\n') + '\n';
}
