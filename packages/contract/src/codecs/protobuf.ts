import { create, fromBinary, isMessage, toBinary } from '@bufbuild/protobuf'
import type { Codec } from '../codec'
import { isMessageSchema, type Schema } from '../schema'

function messageType(schema: Schema) {
  if (!isMessageSchema(schema))
    throw new TypeError('the protobuf codec needs @bufbuild/protobuf message types as schemas')
  return schema
}

/**
 * Protocol Buffers binary through `@bufbuild/protobuf`: the method's input and output are message
 * types (`UserSchema` from protoc-gen-es, or one built at run time). A caller may pass a message
 * or a plain init object (`{ id: '42' }`); handlers get messages.
 */
export const protobuf: Codec = {
  name: 'protobuf',
  encode(value, schema) {
    const type = messageType(schema)
    return toBinary(type, isMessage(value, type) ? value : create(type, value as never))
  },
  decode(bytes, schema) {
    return fromBinary(messageType(schema), bytes)
  },
}
