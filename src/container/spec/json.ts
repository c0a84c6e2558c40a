/**
 * JSON serialization that writes bigint as a raw JSON number (the OCI spec's int64/uint64 fields need numbers;
 * JSON.stringify throws on bigint and JS numbers lose precision beyond 2^53).
 * Object keys with undefined values are skipped; undefined in arrays becomes null, as with JSON.stringify.
 */
export function stringifyJson(value: unknown, indent = 0): string {
  return write(value, indent > 0 ? ' '.repeat(indent) : '', '');
}

/** The bytes of config.json for a spec. */
export function ociSpecJson(spec: unknown): string {
  return stringifyJson(spec, 2) + '\n';
}

function write(v: unknown, unit: string, cur: string): string {
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'undefined':
    case 'function':
    case 'symbol':
      return 'null';
  }
  if (v === null) return 'null';
  const next = cur + unit;
  const nl = unit ? '\n' : '';
  const sep = unit ? ': ' : ':';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const items = v.map((x) => next + write(x, unit, next));
    return '[' + nl + items.join(',' + nl) + nl + cur + ']';
  }
  const obj = v as Record<string, unknown> & { toJSON?: () => unknown };
  if (typeof obj.toJSON === 'function') return write(obj.toJSON(), unit, cur);
  const parts: string[] = [];
  for (const [k, x] of Object.entries(obj)) {
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    parts.push(next + JSON.stringify(k) + sep + write(x, unit, next));
  }
  if (parts.length === 0) return '{}';
  return '{' + nl + parts.join(',' + nl) + nl + cur + '}';
}
