import type { PeerInfo } from '@srpc/core'
import type { FrameId, RpcError } from '@srpc/protocol'
import type { ServerCall } from './server-call'

export type CallKind = 'request' | 'session'

/** What a call needs from its connection. */
export interface CallHost {
  readonly peer: PeerInfo
  readonly streamHighWaterMark: number
  /** Bytes one stream or session may queue for sending (maxBufferedBytes). */
  readonly maxBufferedBytes: number
  /** Set once the server began a graceful shutdown. */
  readonly shutdownReason: RpcError | undefined
  send(flags: number, id: FrameId, value: Buffer): boolean
  /** False while the socket is backed up or closed. */
  readonly writable: boolean
  whenWritable(): Promise<void>
  /** Returns `bytes` of credit to the client for stream `id` (WINDOW_UPDATE). */
  grant(id: FrameId, bytes: number): void
  pauseReading(): void
  resumeReading(): void
  callFinished(call: ServerCall): void
  handlerFailed(call: ServerCall, error: unknown): void
}
