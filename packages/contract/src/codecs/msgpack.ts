import { Packr } from 'msgpackr'
import type { Codec } from '../codec'
import { findHostileKey } from '../hostile-keys'
import { encodeUtf8, includesBytes } from './utf8'

/**
 * Plain MessagePack maps and arrays (no msgpackr records, so any MessagePack library can read
 * them); `Date` travels as the timestamp extension and `Uint8Array` as bin, so both survive the
 * round trip (bin decodes as a Uint8Array; on Node, a Buffer).
 */
const packr = /* @__PURE__ */ new Packr({ useRecords: false, mapsAsObjects: true })

const PROTO = /* @__PURE__ */ encodeUtf8('__proto_')
const CONSTRUCTOR = /* @__PURE__ */ encodeUtf8('constructor')

/**
 * MessagePack through msgpackr. msgpackr renames a `__proto__` key to `__proto_` rather than
 * setting a prototype; this codec refuses such payloads outright (and `constructor` keys holding
 * a `prototype`), as the JSON codec does, so a genuine `__proto_` key is refused too.
 */
export const msgpack: Codec = {
  name: 'msgpack',
  encode(value) {
    return packr.pack(value)
  },
  decode(bytes) {
    const value: unknown = packr.unpack(bytes)
    if (includesBytes(bytes, PROTO) || includesBytes(bytes, CONSTRUCTOR)) {
      const key = findHostileKey(value, '__proto_')
      if (key !== undefined) throw new TypeError(`key ${key} is not allowed`)
    }
    return value
  },
}
