import type { CallHost as PeerCallHost, PeerInfo } from '@srpc/core'
import type { RpcError } from '@srpc/protocol'
import type { ServerCall } from './server-call'

export type CallKind = 'request' | 'session'

/** What a server call needs from its connection: core's CallHost, and what only a server call asks. */
export interface CallHost extends PeerCallHost {
  readonly peer: PeerInfo
  /** The connection's process-wide id (logs, diagnostics channels). */
  readonly connectionId: number
  /** Set once the server began a graceful shutdown. */
  readonly shutdownReason: RpcError | undefined
  callFinished(call: ServerCall): void
  handlerFailed(call: ServerCall, error: unknown): void
}
