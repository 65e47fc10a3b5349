import type { FrameId, RpcError } from '@srpc/protocol'

/** What a peer connection keeps for every call in flight, on either end. */
export interface PeerCall {
  readonly id: FrameId
  /** The peer returned `bytes` of send credit on this id (WINDOW_UPDATE). */
  grant(bytes: number): void
}

/** What a call, stream or session needs from its connection, on either end. */
export interface CallHost {
  readonly streamHighWaterMark: number
  /** Bytes one stream or session may queue for sending (maxBufferedBytes). */
  readonly maxBufferedBytes: number
  /**
   * Writes one frame of call `id` (its open went out already, so no type), `prefix` (a metadata
   * block) before the value. False once backed up.
   */
  send(flags: number, id: FrameId, value: Uint8Array, prefix?: Uint8Array): boolean
  /** False while the transport is backed up or closed. */
  readonly writable: boolean
  whenWritable(): Promise<void>
  /** Returns `bytes` of credit to the peer for stream `id` (WINDOW_UPDATE). */
  grant(id: FrameId, bytes: number): void
  /** Tells the peer to stop working on `id` (when it understands CANCEL) and forgets the id. */
  cancel(id: FrameId, error: RpcError): void
  /** Forgets `id` without telling the peer (the call ended normally). */
  forget(id: FrameId): void
  pauseReading(): void
  resumeReading(): void
}
