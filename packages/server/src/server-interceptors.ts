import {
  applyInterceptors,
  type CallInfo,
  type CallKind,
  type CallNext,
  type CallResult,
  type CallStats,
  type Interceptor,
  newCallStats,
  okResult,
  type PeerInfo,
  rejected,
  runChain,
} from '@srpc/core'
import { Code, type Metadata, RpcError } from '@srpc/protocol'
import type { ConcurrencyLimiter } from './concurrency-limiter'
import type { ServerCall } from './server-call'

/** Called when the limiter sheds a call (its queue is full), for the logs. */
export type ShedReport = (call: ServerCall, error: RpcError) => void

/** Starts a call past the interceptors: a request waits for a worker slot, a session runs at once. */
export function startCall(call: ServerCall, limiter: ConcurrencyLimiter, shed?: ShedReport): void {
  if (call.kind === 'session') return call.runHandler()
  try {
    limiter.submit(call)
  } catch (err) {
    shed?.(call, err as RpcError)
    call.reject(err as RpcError)
  }
}

/** What server interceptors see of one call: read through to the call, so nothing is copied. */
class ServerCallInfo implements CallInfo {
  readonly side = 'server'
  readonly stats: CallStats = newCallStats()
  readonly started = performance.now()
  readonly #call: ServerCall

  constructor(call: ServerCall) {
    this.#call = call
  }

  get route(): string {
    return this.#call.route
  }

  get kind(): CallKind {
    return this.#call.kind === 'session' ? 'session' : this.#call.streaming ? 'server-stream' : 'unary'
  }

  get metadata(): Metadata {
    return this.#call.metadata
  }

  get deadline(): number | undefined {
    return this.#call.deadlineEpoch
  }

  get signal(): AbortSignal {
    return this.#call.signal
  }

  get payload(): Buffer {
    return this.#call.payload
  }

  get peer(): PeerInfo {
    return this.#call.peer
  }
}

/**
 * Runs a call through the server's interceptors (composed per call, as connect-es does). The
 * innermost `next` starts the call (concurrency limiter, middleware, handler) and settles once it is
 * finished, with its final code. An interceptor that throws before `next` refuses the call with
 * its RpcError; anything else it throws is reported (`report`) and refuses with INTERNAL.
 */
export function interceptCall(
  call: ServerCall,
  interceptors: readonly Interceptor[],
  limiter: ConcurrencyLimiter,
  report: (error: unknown) => void,
  shed?: ShedReport,
): void {
  const info = new ServerCallInfo(call)
  let started = false
  const inner: CallNext = () => {
    // The call may have ended (cancelled, deadline, connection lost) while an interceptor waited.
    if (call.settled) return rejected(call.status ?? new RpcError(Code.CANCELLED, 'call already over'))
    if (started) return rejected(new RpcError(Code.FAILED_PRECONDITION, 'next() called twice on the server'))
    started = true
    const done = new Promise<CallResult>((resolve, reject) => {
      call.onFinished = () => {
        const stats = info.stats
        stats.durationMs = performance.now() - info.started
        stats.messagesSent = call.messagesSent
        stats.messagesReceived = call.messagesReceived
        const status = call.status
        if (status) reject(status)
        else resolve(okResult(stats, info.kind === 'unary' ? call.replyValue : undefined, call.sentMetadata))
      }
    })
    done.catch(noop)
    startCall(call, limiter, shed)
    return done
  }
  const wrap = (err: unknown): RpcError => {
    if (err instanceof RpcError) return err
    report(err)
    return new RpcError(Code.INTERNAL, 'internal server error')
  }
  runChain(applyInterceptors(interceptors, inner), info, wrap).then(
    (result) => {
      if (started) return
      // An interceptor answered on its own (a cache): its value is the reply.
      if (call.kind === 'request' && Buffer.isBuffer(result.value)) call.answer(result.value)
      else call.reject(new RpcError(Code.INTERNAL, 'an interceptor ended the call without running it'))
    },
    (err: RpcError) => {
      if (!started) call.reject(err)
    },
  )
}

function noop(): void {}
