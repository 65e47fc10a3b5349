import type { Frame, PeerCall } from '@srpc/core'
import type { Metadata, RpcError } from '@srpc/protocol'

/** A client call, stream or session registered on its connection, waiting for the server's frames. */
export interface PendingCall extends PeerCall {
  /**
   * A frame for this id arrived (decompressed already); `metadata` is the response metadata the
   * server sent with it (its reply, or its stream's or session's end).
   */
  onFrame(frame: Frame, metadata?: Metadata): void
  /** The connection failed or closed: end with this error. */
  fail(error: RpcError): void
}
