/**
 * Keys that let a decoded payload reach an object's prototype once application code copies or
 * merges it: `__proto__` anywhere, and `constructor` holding a `prototype`. The JSON and
 * MessagePack codecs refuse payloads with them (as Fastify's secure-json-parse does), so no
 * handler ever sees one. Checked only when the raw text or bytes contain the names, so ordinary
 * payloads pay one substring scan.
 */
export function hostileKey(key: string, value: unknown): boolean {
  if (key === '__proto__') return true
  return (
    key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype')
  )
}

/** The first hostile key in `value` (walked without recursion, so deep nesting cannot overflow), or undefined. */
export function findHostileKey(value: unknown, protoName = '__proto__'): string | undefined {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (typeof item !== 'object' || item === null || ArrayBuffer.isView(item)) continue
    if (Array.isArray(item)) {
      for (const element of item) stack.push(element)
      continue
    }
    for (const key of Object.keys(item)) {
      const child = (item as Record<string, unknown>)[key]
      if (key === protoName || hostileKey(key, child)) return key === protoName ? '__proto__' : key
      stack.push(child)
    }
  }
  return undefined
}
