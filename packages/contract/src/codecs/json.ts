import type { Codec } from '../codec'
import { findHostileKey } from '../hostile-keys'
import { decodeUtf8, encodeUtf8 } from './utf8'

const EMPTY = new Uint8Array(0)

/**
 * JSON (the default codec): UTF-8 text, what `JSON.stringify` writes. `undefined` (a method that
 * returns nothing) travels as an empty payload. Payloads with a `__proto__` key, or a
 * `constructor` key holding a `prototype`, are refused (hostile-keys.ts), spelt out or escaped.
 */
export const json: Codec = {
  name: 'json',
  encode(value) {
    if (value === undefined) return EMPTY
    const text = JSON.stringify(value)
    if (text === undefined) throw new TypeError(`a ${typeof value} has no JSON form`)
    return encodeUtf8(text)
  },
  decode(bytes) {
    if (bytes.length === 0) return undefined
    const text = decodeUtf8(bytes)
    const value: unknown = JSON.parse(text)
    // A key can hide behind \u escapes (`"\u005f_proto__"` parses as `__proto__`): text with any
    // escape of that kind is walked too; ordinary payloads pay three substring scans.
    if (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')) {
      const key = findHostileKey(value)
      if (key !== undefined) throw new TypeError(`key ${key} is not allowed`)
    }
    return value
  },
}
