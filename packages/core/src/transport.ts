/**
 * Who is on the other end of a transport, as far as the transport knows. A TLS transport fills
 * in the address and the client certificate; an in-memory one only says `memory`.
 */
export interface TransportPeer {
  /** The kind of transport: `tls`, `memory`, or another implementation's name (`websocket`, …). */
  readonly transport: 'tls' | 'memory' | (string & {})
  readonly address?: string
  readonly port?: number
  /** True when the peer presented a certificate that was verified (mTLS). */
  readonly authorized?: boolean
  /** Subject of the peer's verified certificate, when there is one. */
  readonly certificateSubject?: Record<string, string | string[]>
  /** The HTTP request that opened the transport (WebSocket): cookies, `authorization`, `origin`, … */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>
}

/**
 * What a transport reports to its one reader (a FrameConnection). Every callback is made from
 * the event loop, never from inside a call the reader made on the transport.
 */
export interface TransportHandlers {
  /** Bytes from the peer, in order. The chunk is the reader's: the transport never reuses it. */
  onData(chunk: Uint8Array): void
  /** `write()` returned false earlier and the transport's buffer has emptied: write on. */
  onDrain(): void
  /** The peer finished sending (a FIN): no `onData` follows. The transport ends its side too. */
  onEnd(): void
  /**
   * The transport is gone, both ways; called exactly once, last. `error` is set when it failed
   * (reset, TLS error, `destroy(err)`) and undefined after an orderly close.
   */
  onClose(error: Error | undefined): void
}

/**
 * `open`: bytes flow both ways. `ending`: `close()` was called or the peer ended; what was
 * written still leaves. `closed`: destroyed or fully closed; writes are dropped.
 */
export type TransportState = 'open' | 'ending' | 'closed'

/**
 * A duplex byte stream that carries srpc frames: TLS over TCP (`connectTls`, `tlsTransport`),
 * an in-memory pair for tests (`memoryTransportPair`), WebSocket later. The client's pool gets
 * one from its `connector`; the server is handed one by `server.accept(transport)`.
 *
 * Exactly one reader owns a transport: it calls `start()` once, then writes, pauses and closes
 * it; the transport reports back through the handlers given to `start()`. Bytes are opaque
 * here: framing, batching and flow control live above (FrameConnection).
 */
export interface Transport {
  /** Who the peer is; fixed for the transport's life. */
  readonly peer: TransportPeer
  readonly state: TransportState
  /**
   * Attaches the reader. Data may arrive from the next event-loop turn on (never before
   * `start()`); a transport that closed before `start()` reports `onClose` then.
   */
  start(handlers: TransportHandlers): void
  /**
   * Queues bytes for the peer. Returns false when the transport holds more than it wants to
   * (its high-water mark): the bytes are still queued, but the writer should stop until
   * `onDrain`. The transport keeps a reference to `chunk` until `written` is called (in write
   * order, with an error when the bytes were dropped), so the writer must not change it before.
   * Writes after `close()` or `destroy()` are dropped.
   */
  write(chunk: Uint8Array, written?: (err?: Error | null) => void): boolean
  /** Writes between `cork()` and `uncork()` may leave together (one syscall, one TLS record). */
  cork(): void
  uncork(): void
  /** Stops `onData` until `resume()`; the peer then meets backpressure. */
  pause(): void
  resume(): void
  /** Graceful end: what was written still leaves, then the peer sees the end. Safe to call twice. */
  close(): void
  /** Drops the transport now, with what is unwritten; `onClose(error)` follows. Safe to call twice. */
  destroy(error?: Error): void
}
