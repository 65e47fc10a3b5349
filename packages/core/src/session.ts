/**
 * A bidirectional session, the same on both ends: the client's `ClientSession` (from
 * `pool.createBidirectionalSession`) and the server's `ctx.session()`.
 */
export interface Session {
  /**
   * Sends one message; resolves when it is handed to the socket and the connection can take
   * more. Rejects with RESOURCE_EXHAUSTED, sending nothing, past `maxBufferedBytes`.
   */
  send(data: Uint8Array | string): Promise<void>
  /** The next message from the peer, or `undefined` once the peer ended its half. */
  receive(): Promise<Buffer | undefined>
  /** The peer's messages, ending when the peer ends its half. */
  messages(): AsyncIterable<Buffer>
  /**
   * Ends our half. The client then waits (bounded) for the server to end its half; the server
   * resolves once its end marker is handed to the socket (the handler may still read).
   */
  close(): Promise<void>
  /** Bytes queued and not yet handed to the socket, like WebSocket's `bufferedAmount`. */
  readonly bufferedAmount: number
  /** Aborted, with the RpcError as reason, when the session fails (cancelled, deadline, connection lost). */
  readonly signal: AbortSignal
}
