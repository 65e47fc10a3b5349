import type { Codec } from '../codec'

/**
 * Raw bytes: the payload is the value, untouched (a Buffer on Node, a Uint8Array in a page). For methods
 * whose schemas accept a Uint8Array, e.g. `z.instanceof(Uint8Array)`.
 */
export const bytes: Codec = {
  name: 'bytes',
  encode(value) {
    if (!(value instanceof Uint8Array))
      throw new TypeError(`the bytes codec sends Uint8Arrays, not a ${typeof value}`)
    return value
  },
  decode(payload) {
    return payload
  },
}
