import type { Metadata, RpcError } from '@srpc/protocol'

/**
 * What a typed client needs from the thing that carries its calls: the Node `Pool` of
 * `@srpc/client` and the browser `WebClient` of `@srpc/web` both have this shape, so one contract
 * serves both. Defined here rather than imported so that a browser app needs neither Node package.
 */
export interface RpcClientLike<O extends RpcCallOptions = RpcCallOptions> {
  call(route: string, payload: Uint8Array, options?: O): Promise<Uint8Array>
  callStream(route: string, payload: Uint8Array, options?: O): RpcStream
  createBidirectionalSession(route: string, options?: O & RpcSessionOptions): Promise<RpcSession>
}

/** The call options every client understands; a client may accept more (a pool's `retry`). */
export interface RpcCallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED; 0 for none. */
  timeout?: number
  /** Aborting it cancels the call with CANCELLED. */
  signal?: AbortSignal
  /** Key/value pairs for the server (`ctx.metadata`). */
  metadata?: Metadata
  /** On a new connection, wait for the server's HELLO so the call gets error details and response metadata. */
  waitForExtensions?: boolean
  /** Called with what the server set in `ctx.responseMetadata`. */
  onResponseMetadata?: (metadata: Metadata) => void
}

export interface RpcSessionOptions extends RpcCallOptions {
  /** How long `close()` waits for the server to end its half before cancelling, ms. */
  closeTimeout?: number
}

/** A server stream of raw chunks (a pool's ClientStream, a WebStream). */
export interface RpcStream {
  next(): Promise<IteratorResult<Uint8Array, unknown>>
  return(): Promise<IteratorResult<Uint8Array, unknown>>
  /** What the server set in `ctx.responseMetadata`, once the stream ended. */
  readonly responseMetadata: Metadata | undefined
}

/** A bidirectional session of raw messages (a pool's ClientSession, a WebSession). */
export interface RpcSession {
  readonly route: string
  readonly bufferedAmount: number
  readonly signal: AbortSignal
  readonly error: RpcError | undefined
  readonly ended: boolean
  readonly responseMetadata: Metadata | undefined
  send(message: Uint8Array): Promise<void>
  receive(): Promise<Uint8Array | undefined>
  messages(): AsyncIterable<Uint8Array>
  close(): Promise<void>
  cancel(error: RpcError): void
}
