import type { Extensions } from '@srpc/core'
import { encodeMetadata, type Metadata } from '@srpc/protocol'

/** What a call needs to send its response metadata. */
export interface ResponseMetadataOwner {
  readonly ext: Extensions
  /** What the handler set (`ctx.responseMetadata`); undefined when it never looked. */
  readonly responseMetadata: Metadata | undefined
  /** The metadata that went out with the call's last frame, for interceptors. */
  sentMetadata: Metadata | undefined
}

/**
 * The metadata block that goes with a call's last frame (the reply, the stream's end, the
 * session's end): undefined when the handler set nothing or the client did not negotiate
 * `response-metadata` (a v1 peer gets the same bytes as ever). Throws INVALID_ARGUMENT for a bad
 * key or value, RESOURCE_EXHAUSTED past 8 KiB: a bug in the handler, which fails the call.
 */
export function responseBlock(call: ResponseMetadataOwner): Uint8Array | undefined {
  const metadata = call.responseMetadata
  if (metadata === undefined || !call.ext.has('response-metadata')) return undefined
  let empty = true
  for (const _ in metadata) {
    empty = false
    break
  }
  if (empty) return undefined
  const block = encodeMetadata(metadata)
  call.sentMetadata = { ...metadata }
  return block
}
