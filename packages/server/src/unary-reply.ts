import { rejected } from '@srpc/core'
import { Code, Flags, RpcError } from '@srpc/protocol'
import { responseBlock } from './response-metadata'
import type { WriterCall } from './stream-writer'

const RESOLVED = Promise.resolve()

/** What a reply needs of its call, beyond what a writer needs. */
export interface ReplyCall extends WriterCall {
  replyValue: Buffer | undefined
  fail(error: RpcError): void
}

/**
 * Sends the one reply of a request (RESPONSE, compressed when that pays), which ends our half.
 * A reply too large for the client fails the call with that error instead of the connection.
 */
export function sendReply(call: ReplyCall, payload: Buffer): Promise<void> {
  if (call.localEnded) return call.afterDone('reply() called twice')
  const { host, id } = call
  let block: Uint8Array | undefined
  try {
    block = responseBlock(call)
  } catch (err) {
    return call.wrongType(err)
  }
  const compressed = call.ext.compress(payload)
  // The metadata block goes before the payload, never compressed (as on a request).
  const flags = block === undefined ? Flags.RESPONSE : Flags.RESPONSE | Flags.METADATA
  let written: boolean
  try {
    written = compressed
      ? host.send(flags | Flags.COMPRESSED, id, compressed, block)
      : host.send(flags, id, payload, block)
  } catch (err) {
    // Nothing went out: our half ends with the error frame instead.
    call.fail(RpcError.from(err))
    return rejected(err)
  }
  call.endLocal()
  call.replyValue = payload
  return written ? RESOLVED : host.whenWritable()
}

/** A request's handler returned without replying: its value is the reply, or there is none. */
export function replyWithResult(call: ReplyCall, result: Buffer | undefined): void {
  if (result !== undefined) sendReply(call, result)
  else call.fail(new RpcError(Code.INTERNAL, 'handler finished without a reply'))
}
