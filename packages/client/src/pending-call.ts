import type { Frame, PeerCall } from '@srpc/core'
import type { RpcError } from '@srpc/protocol'

/** A client call, stream or session registered on its connection, waiting for the server's frames. */
export interface PendingCall extends PeerCall {
  /** A frame for this id arrived (decompressed already). */
  onFrame(frame: Frame): void
  /** The connection failed or closed: end with this error. */
  fail(error: RpcError): void
}
