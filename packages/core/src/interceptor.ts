import { Code, invalidOption, type Metadata, RpcError } from '@srpc/protocol'

/** Who is on the other end of a server's connection. */
export interface PeerInfo {
  /** The transport the client came over: `tls` from `listen()`, `websocket` from `listenWebSocket()`, `memory` for an in-memory pair, … */
  transport: string
  address: string | undefined
  port: number | undefined
  /** True when the client presented a certificate the server verified (mTLS). */
  authorized: boolean
  /** Subject of the verified client certificate, when there is one. */
  certificateSubject: Record<string, string | string[]> | undefined
  /**
   * Headers of the HTTP request that opened a `websocket` transport (cookies, `authorization`,
   * `origin`, lower-case names as Node gives them); undefined for TLS and memory transports.
   */
  headers?: Readonly<Record<string, string | string[] | undefined>>
}

export type CallSide = 'client' | 'server'
export type CallKind = 'unary' | 'server-stream' | 'session'

/** Messages a call moved and how long it took: final once its `next` settled, whatever the outcome. */
export interface CallStats {
  /** The request, the reply, each chunk and each session message counts one; a bare end marker does not. */
  messagesSent: number
  messagesReceived: number
  /** From the start of the call (before the first interceptor) to its end, ms; 0 while it runs. */
  durationMs: number
}

/** One call as interceptors see it, on either end. */
export interface CallInfo {
  readonly side: CallSide
  readonly route: string
  /**
   * On the server a request is `'unary'` until its handler turns it into a stream: read it again
   * after `next` settled to learn what the call became.
   */
  readonly kind: CallKind
  /**
   * On the client, what goes to the server: an interceptor may add entries before calling
   * `next` (a token, trace context). On the server, what arrived.
   */
  readonly metadata: Metadata
  /** Epoch ms after which nobody waits for the call; undefined without a timeout. */
  readonly deadline: number | undefined
  /** Aborted when the call is cancelled (its signal on the client, `ctx.signal` on the server). */
  readonly signal: AbortSignal | undefined
  /** The request bytes (empty for a session): for validation and logging, not for rewriting. */
  readonly payload: Buffer
  /** The client's connection, on the server; undefined on the client. */
  readonly peer: PeerInfo | undefined
  /** Counters of this call, final once `next` settled (also when it rejected). */
  readonly stats: CallStats
}

/** How a call ended well. A failed call makes `next` reject with its RpcError instead. */
export interface CallResult extends CallStats {
  readonly code: 'OK'
  /** The reply of a unary call; undefined for streams and sessions. */
  readonly value: Buffer | undefined
  /**
   * Response metadata (the server's `ctx.responseMetadata`, sent with the reply, the stream's end
   * or the session's end) when the peer sent any; undefined otherwise.
   */
  readonly metadata?: Metadata
}

/**
 * Runs the rest of the chain. It settles when the call is over: a unary call when its reply or
 * error is known, a server stream when its last chunk was sent (server) or arrived (client), a
 * session when both halves ended; it rejects with the RpcError that ended the call otherwise
 * (CANCELLED, DEADLINE_EXCEEDED included).
 */
export type CallNext = (call: CallInfo) => Promise<CallResult>

/**
 * One shape on both ends (as connect-es): `(next) => async (call) => { …; return next(call) }`.
 * Throwing an RpcError before calling `next` refuses the call with that code.
 */
export type Interceptor = (next: CallNext) => CallNext

/** Wraps `inner` in `interceptors`, the first one outermost. */
export function applyInterceptors(interceptors: readonly Interceptor[], inner: CallNext): CallNext {
  let next = inner
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i](next)
  return next
}

/**
 * Runs a chain so that nothing an interceptor does escapes: a synchronous throw becomes a
 * rejection, a non-RpcError goes through `wrap` (INTERNAL with the original as `cause` by
 * default), and a result without the OK code is refused as INTERNAL.
 */
export function runChain(
  chain: CallNext,
  call: CallInfo,
  wrap: (err: unknown) => RpcError = RpcError.from,
): Promise<CallResult> {
  let result: Promise<CallResult>
  try {
    result = Promise.resolve(chain(call))
  } catch (err) {
    return Promise.reject(wrap(err))
  }
  return result.then(checkResult, (err: unknown) => Promise.reject(wrap(err)))
}

function checkResult(result: CallResult): CallResult {
  if (result === null || typeof result !== 'object' || result.code !== 'OK')
    throw new RpcError(Code.INTERNAL, 'an interceptor settled the call without a CallResult')
  return result
}

/** Validates the `interceptors` option once. */
export function interceptorsOption(value: unknown): readonly Interceptor[] {
  if (value === undefined) return NO_INTERCEPTORS
  if (!Array.isArray(value)) invalidOption('interceptors', 'must be an array of functions')
  for (const [i, interceptor] of value.entries())
    if (typeof interceptor !== 'function') invalidOption(`interceptors[${i}]`, 'must be a function')
  return Object.freeze([...value]) as readonly Interceptor[]
}

export const NO_INTERCEPTORS: readonly Interceptor[] = Object.freeze([])

/** A new counter set for one call. */
export function newCallStats(): CallStats {
  return { messagesSent: 0, messagesReceived: 0, durationMs: 0 }
}

/** The result of a call that ended well, from its counters. */
export function okResult(stats: CallStats, value: Buffer | undefined, metadata?: Metadata): CallResult {
  return {
    code: 'OK',
    value,
    metadata,
    messagesSent: stats.messagesSent,
    messagesReceived: stats.messagesReceived,
    durationMs: stats.durationMs,
  }
}
