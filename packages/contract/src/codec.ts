import type { Schema } from './schema'

/**
 * How a method's values become payload bytes and back. `schema` is the method's input or output
 * schema: JSON and MessagePack ignore it, protobuf needs its message type. `decode` and `encode`
 * throw on bytes or values they cannot handle; the caller turns that into an RpcError
 * (INVALID_ARGUMENT for what a client sent, INTERNAL for what a server would send).
 *
 * ```ts
 * const cbor: Codec = { name: 'cbor', encode: (v) => cborEncode(v), decode: (b) => cborDecode(b) }
 * ```
 */
export interface Codec {
  /** The name that reflection shows (`json`, `msgpack`, `protobuf`, `bytes`, …). */
  readonly name: string
  encode(value: unknown, schema: Schema): Uint8Array
  decode(bytes: Uint8Array, schema: Schema): unknown
}
