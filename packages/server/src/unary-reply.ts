import { rejected } from '@srpc/core'
import { Code, Flags, RpcError } from '@srpc/protocol'
import { responseBlock } from './response-metadata'
import type { WriterCall } from './stream-writer'

const RESOLVED = Promise.resolve()

/** What a reply needs of its call, beyond what a writer needs. */
export interface ReplyCall extends WriterCall {
  /** The reply, once given: set while it deflates off the event loop too (the call is `answered` then). */
  replyValue: Buffer | undefined
  fail(error: RpcError): void
  /** The reply that deflated off the event loop went out, or was dropped: the call may finish. */
  replied(): void
}

/**
 * Sends the one reply of a request (RESPONSE, compressed when that pays), which ends our half.
 * A reply too large for the client fails the call with that error instead of the connection.
 * A large one deflates on zlib's thread pool (as stream messages do): the call counts as
 * answered meanwhile, and if it ends first (cancelled, deadline, connection gone) nothing is sent
 * and the promise rejects with its error.
 */
export function sendReply(call: ReplyCall, payload: Buffer): Promise<void> {
  if (call.answered) return call.afterDone('reply() called twice')
  let block: Uint8Array | undefined
  try {
    block = responseBlock(call)
  } catch (err) {
    return call.wrongType(err)
  }
  const compressed = call.ext.compressMaybeAsync(payload)
  if (!(compressed instanceof Promise)) return write(call, payload, compressed, block)
  call.replyValue = payload
  const sent = compressed.then((deflated) => {
    try {
      // Our half ended meanwhile (an error frame went instead, or the call was stopped).
      if (call.localEnded) return rejected(call.sendRefusal('the call ended before its reply was sent'))
      return write(call, payload, deflated, block)
    } finally {
      call.replied()
    }
  })
  // Nobody may be listening (a handler that returned its value): failing must stay quiet.
  sent.catch(noop)
  return sent
}

/** Writes the reply, the metadata block (never compressed, as on a request) before the payload. */
function write(
  call: ReplyCall,
  payload: Buffer,
  compressed: Buffer | undefined,
  block: Uint8Array | undefined,
): Promise<void> {
  const { host, id } = call
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

function noop(): void {}
