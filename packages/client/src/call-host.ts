import type { Frame } from '@srpc/core'
import type { FrameId, RpcError } from '@srpc/protocol'

/** A call, stream or session registered on a connection, waiting for frames. */
export interface PendingCall {
  readonly id: FrameId
  /** A frame for this id arrived. */
  onFrame(frame: Frame): void
  /** The connection failed or closed: end with this error. */
  fail(error: RpcError): void
}

/** What calls need from their connection. */
export interface CallHost {
  readonly streamHighWaterMark: number
  /** Bytes one session may queue for sending (maxBufferedBytes). */
  readonly maxBufferedBytes: number
  send(flags: number, id: FrameId, type: string, value: Buffer): boolean
  /** False while the socket is backed up or closed. */
  readonly writable: boolean
  whenWritable(): Promise<void>
  /** Returns `bytes` of credit to the server for stream `id` (WINDOW_UPDATE). */
  grant(id: FrameId, bytes: number): void
  /** Tells the server to stop working on `id` (when it can understand that) and forgets the id. */
  cancel(id: FrameId, error: RpcError): void
  /** Forgets `id` without telling the server (it ended normally). */
  forget(id: FrameId): void
  pauseReading(): void
  resumeReading(): void
}
