import type { CallOptions } from './connection'

/** Resends of a call that provably never reached a handler (refused, or never written). */
export const MAX_UNPROCESSED_RESENDS = 3

/** What a resend needs of the failed attempt; a UnaryCall carries it, so it costs no closure. */
export interface RefusedCall {
  readonly route: string
  readonly payload: Buffer
  readonly options: CallOptions
  /** How often this call went out again already. */
  readonly resends: number
  /** performance.now() time of the call's deadline, undefined without a timeout. */
  readonly deadlineAt: number | undefined
}

/** Sends a call again, elsewhere, when it failed as refused: no server processed it. */
export interface Resender {
  /** The promise of the new attempt, or undefined to let the call fail with its error. */
  resend(call: RefusedCall): Promise<Buffer> | undefined
}

/**
 * The pool's transparent resend (grpc's "transparent retry"): a unary call the server provably
 * never processed (refused by a GOAWAY, or never written before its connection died) goes out
 * again through `send` (which picks another connection, or waits for one), within the call's
 * deadline, at most MAX_UNPROCESSED_RESENDS times, and not once the pool is closed.
 *
 * It is a hook the call invokes when it fails, not an interceptor: it must run on every call,
 * below the user's interceptors (they see one call), and an interceptor on every call was
 * measured at +1.4 µs CPU per call (about 1.7× srpc's own cost per call over the memory
 * transport), where this hook costs nothing until a call is refused. The per-call `retry`
 * policy, which a caller opts into, is an interceptor (retry.ts).
 */
export function refusedCallResender(
  send: (route: string, payload: Buffer, options: CallOptions, resends: number) => Promise<Buffer>,
  closed: () => boolean,
): Resender {
  return {
    resend(call) {
      if (closed() || call.resends >= MAX_UNPROCESSED_RESENDS) return undefined
      const deadlineAt = call.deadlineAt
      const timeout = deadlineAt === undefined ? undefined : deadlineAt - performance.now()
      if (timeout !== undefined && timeout <= 0) return undefined
      const options = timeout === call.options.timeout ? call.options : { ...call.options, timeout }
      return send(call.route, call.payload, options, call.resends + 1)
    },
  }
}
