import type { CallKind } from '@srpc/core'
import { Code, RpcError } from '@srpc/protocol'
import { type Context, callOfContext } from './context'
import type { Handler } from './mux'

/** How a call was opened on the wire, as the route-kind check needs it. */
export interface OpenedAs {
  /** A REQUEST frame (unary or server stream) or a session's STREAM open. */
  readonly opening: 'request' | 'session'
  /** The REQUEST carried STREAM (0x05): the client asked for a server stream. */
  readonly streamRequested: boolean
  /** The client sent a HELLO: an srpc client, which always flags a stream request with STREAM. */
  readonly srpcPeer: boolean
}

/** Every OpenedAs there is, made once: opening a call allocates none. */
const OPENED: readonly OpenedAs[] = (['request', 'session'] as const).flatMap((opening) =>
  [false, true].flatMap((streamRequested) =>
    [false, true].map((srpcPeer) => Object.freeze({ opening, streamRequested, srpcPeer })),
  ),
)

export function openedAs(
  opening: 'request' | 'session',
  streamRequested: boolean,
  srpcPeer: boolean,
): OpenedAs {
  return OPENED[(opening === 'session' ? 4 : 0) + (streamRequested ? 2 : 0) + (srpcPeer ? 1 : 0)]
}

const HOW: Record<CallKind, string> = {
  unary: 'call()',
  'server-stream': 'callStream()',
  session: 'createBidirectionalSession()',
}

/**
 * FAILED_PRECONDITION when a call of one kind reaches a route declared for another; undefined
 * when it fits. A session open and a request never fit each other's routes. Unary and stream
 * requests look alike to a v1 client (it may open a stream with a plain REQUEST), so:
 * REQUEST|STREAM on a unary route is refused from anyone (the flag says what was meant); a
 * plain REQUEST on a stream route is refused from an srpc client (its call() sends no STREAM
 * flag, its callStream() always does) and served as a stream to a v1 client.
 */
export function kindMismatch(route: string, declared: CallKind, call: OpenedAs): RpcError | undefined {
  let asked: CallKind
  if (call.opening === 'session') asked = 'session'
  else if (declared === 'session') asked = call.streamRequested ? 'server-stream' : 'unary'
  else if (declared === 'unary' && call.streamRequested) asked = 'server-stream'
  else if (declared === 'server-stream' && !call.streamRequested && call.srpcPeer) asked = 'unary'
  else return undefined
  if (asked === declared) return undefined
  return new RpcError(
    Code.FAILED_PRECONDITION,
    `route ${route} serves ${declared} calls, not ${asked}: use ${HOW[declared]}`,
    { details: { route, expected: declared, received: asked } },
  )
}

/**
 * `handler` behind a check of the call's kind against the route's `declared` kind. It runs
 * innermost (after middleware, so an auth middleware still answers a stranger before the
 * stranger learns which routes exist and what they serve).
 */
export function guardKind(route: string, declared: CallKind, handler: Handler): Handler {
  return (ctx: Context) => {
    const error = kindMismatch(route, declared, callOfContext(ctx).openedAs)
    if (error !== undefined) throw error
    return handler(ctx)
  }
}
