/** Plain-text tables for benchmark output (also valid GitHub Markdown). */

export type Cell = string | number | undefined;

function cell(c: Cell): string {
  if (c === undefined || (typeof c === 'number' && !Number.isFinite(c))) return '—';
  if (typeof c === 'number') return Math.abs(c) >= 100 ? c.toFixed(0) : Math.abs(c) >= 10 ? c.toFixed(1) : c.toFixed(2);
  return c;
}

/** A Markdown table with columns padded to equal width; numeric-looking columns right-aligned. */
export function table(header: string[], rows: Cell[][]): string {
  const text = rows.map((r) => header.map((_, i) => cell(r[i])));
  const width = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i].length)));
  const numeric = header.map((_, i) => i > 0 && text.every((r) => /^[-—0-9.,x×%<>≤ ]*$/.test(r[i])));
  const line = (cs: string[]) => '| ' + cs.map((c, i) => (numeric[i] ? c.padStart(width[i]) : c.padEnd(width[i]))).join(' | ') + ' |';
  const sep = '|' + width.map((w, i) => (numeric[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(header), sep, ...text.map(line)].join('\n');
}
