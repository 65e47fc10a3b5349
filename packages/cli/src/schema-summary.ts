/**
 * A JSON Schema in one short line for a table: `{service?: string}`, `"A" | "B"`, `number[]`.
 * Only what people scan for; `srpc list --json` has the full schemas.
 */
export function summarizeSchema(schema: unknown, depth = 0): string {
  if (schema === undefined) return '-'
  if (schema === null || typeof schema !== 'object') return 'any'
  const s = schema as Record<string, unknown>
  if (Array.isArray(s.enum)) return s.enum.map((value) => JSON.stringify(value)).join(' | ')
  if ('const' in s) return JSON.stringify(s.const)
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key]))
      return (s[key] as unknown[]).map((part) => summarizeSchema(part, depth)).join(' | ')
  }
  const type = Array.isArray(s.type) ? s.type.join(' | ') : s.type
  if (type === 'array') return `${wrap(summarizeSchema(s.items, depth + 1))}[]`
  if (type === 'object' || (type === undefined && typeof s.properties === 'object')) {
    const properties = (s.properties ?? {}) as Record<string, unknown>
    const names = Object.keys(properties)
    if (names.length === 0) return 'object'
    if (depth >= 2) return '{…}'
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : [])
    const fields = names.map(
      (name) => `${name}${required.has(name) ? '' : '?'}: ${summarizeSchema(properties[name], depth + 1)}`,
    )
    return `{${fields.join(', ')}}`
  }
  if (typeof type === 'string') return type === 'integer' ? 'integer' : type
  return 'any'
}

function wrap(text: string): string {
  return text.includes(' | ') ? `(${text})` : text
}

/** Cuts a cell to `width` characters, marking the cut. */
export function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = []
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length)
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}
