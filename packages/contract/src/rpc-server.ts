import type { Metadata } from '@srpc/protocol'
import type { MethodKind } from './contract'

/**
 * What `implement` needs from a server: `handle`, as the Server of `@srpc/server` has it. `Ctx`
 * is the context its handlers get (the server's `Context`), inferred from the server passed in.
 * Defined here rather than imported so that the contract's types resolve where `@srpc/server`
 * is not installed (a browser app).
 */
export interface RpcServerLike<Ctx = HandlerContext> {
  handle(route: string, handler: (ctx: Ctx) => unknown, info?: RouteDescription): unknown
}

/** What `implement` says about each route it registers, for reflection and for checking calls. */
export interface RouteDescription {
  readonly kind?: MethodKind
  readonly input?: Record<string, unknown>
  readonly output?: Record<string, unknown>
  readonly codec?: string
  readonly description?: string
}

/**
 * The part of a handler's context every srpc server has; the handlers of `implement(server, …)`
 * get the server's own context type (with everything else it offers).
 */
export interface HandlerContext {
  readonly route: string
  /** What the client sent with the call. */
  readonly metadata: Metadata
  /** What goes back with the reply, the stream's end or the session's end. */
  readonly responseMetadata: Metadata
  /** Aborted when the call is over: cancelled, past its deadline, or the connection lost. */
  readonly signal: AbortSignal
}

/** What `implement` itself uses of a call's context, to read the request and answer it. */
export interface ServingContext {
  readonly payload: Uint8Array
  stream(): { writeChunk(chunk: Uint8Array): Promise<void> }
  session(): RpcServerSession
}

/** The raw server side of a session, as the typed ServerSession wraps it. */
export interface RpcServerSession {
  send(message: Uint8Array): Promise<void>
  receive(): Promise<Uint8Array | undefined>
  messages(): AsyncIterable<Uint8Array>
  close(): Promise<void>
  readonly bufferedAmount: number
  readonly signal: AbortSignal
}
