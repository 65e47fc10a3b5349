import {
  applyInterceptors,
  type CallInfo,
  type CallKind,
  type CallNext,
  type CallResult,
  type CallStats,
  deadlines,
  type Interceptor,
  newCallStats,
  okResult,
  rejected,
  runChain,
} from '@srpc/core'
import { Code, formatMs, type Metadata, RpcError } from '@srpc/protocol'
import type { PoolCallOptions } from './connection'
import type { StreamingCall } from './streaming-call'
import { abortedError } from './unary-call'

type Options = PoolCallOptions & { closeTimeout?: number; waitForReady?: boolean }

/**
 * What one call through the pool's interceptors shares between its chain and its innermost
 * `next`: built per call, only when the pool has interceptors (or the call a retry policy), so
 * a plain call pays nothing for them.
 */
class ClientCall implements CallInfo {
  readonly side = 'client'
  readonly peer = undefined
  readonly stats: CallStats = newCallStats()
  readonly deadline: number | undefined
  readonly metadata: Metadata
  readonly signal: AbortSignal | undefined
  readonly started = performance.now()
  /** performance.now() time of the deadline: what the attempts' timeouts are measured against. */
  readonly deadlineAt: number | undefined

  constructor(
    readonly route: string,
    readonly kind: CallKind,
    readonly payload: Buffer,
    readonly options: Options,
  ) {
    // A copy: interceptors add entries without touching the caller's object.
    this.metadata = { ...options.metadata }
    this.signal = options.signal
    const timeout = options.timeout
    this.deadline = timeout === undefined ? undefined : Date.now() + timeout
    this.deadlineAt = timeout === undefined ? undefined : this.started + timeout
  }

  /** The options of one attempt: the metadata interceptors passed to next, the time left. */
  attemptOptions(info: CallInfo): Options {
    const metadata = info.metadata
    const hasMetadata = metadata !== undefined && Object.keys(metadata).length > 0
    if (this.deadlineAt === undefined)
      return { ...this.options, metadata: hasMetadata ? metadata : undefined }
    const timeout = this.deadlineAt - performance.now()
    if (timeout <= 0)
      throw new RpcError(Code.DEADLINE_EXCEEDED, `call timed out after ${formatMs(this.options.timeout!)}`)
    return { ...this.options, metadata: hasMetadata ? metadata : undefined, timeout }
  }

  end(): void {
    this.stats.durationMs = performance.now() - this.started
  }
}

/** A unary call through `interceptors`: resolves with the reply the chain settled with. */
export function interceptUnary(
  interceptors: readonly Interceptor[],
  route: string,
  payload: Buffer,
  options: Options,
  send: (options: Options) => Promise<Buffer>,
): Promise<Buffer> {
  const call = new ClientCall(route, 'unary', payload, options)
  const inner: CallNext = (info) => {
    let attempt: Promise<CallResult>
    try {
      const once = call.attemptOptions(info)
      // The response metadata goes to the caller's callback and into the result interceptors see.
      let responseMetadata: Metadata | undefined
      const onResponseMetadata = once.onResponseMetadata
      once.onResponseMetadata = (metadata) => {
        responseMetadata = metadata
        onResponseMetadata?.(metadata)
      }
      call.stats.messagesSent = 1
      attempt = send(once).then(
        (value) => {
          call.stats.messagesReceived = 1
          call.end()
          return okResult(call.stats, value, responseMetadata)
        },
        (err: unknown) => {
          call.end()
          throw err
        },
      )
    } catch (err) {
      call.end()
      return rejected(err)
    }
    // An interceptor that drops this promise must not cause an unhandled rejection.
    attempt.catch(noop)
    return attempt
  }
  const settled = runChain(applyInterceptors(interceptors, inner), call).then((result) => {
    const value = result.value
    if (!Buffer.isBuffer(value))
      throw new RpcError(Code.INTERNAL, 'an interceptor settled the call without a reply')
    return value
  })
  return settleBy(settled, options)
}

/**
 * A server stream or session through `interceptors`: resolves with the call as soon as the
 * innermost `next` opened it (the caller iterates while the chain waits for its end), or
 * rejects with what refused it.
 */
export function interceptStreaming<T extends StreamingCall>(
  interceptors: readonly Interceptor[],
  kind: CallKind,
  route: string,
  payload: Buffer,
  options: Options,
  open: (options: Options) => Promise<T>,
): Promise<T> {
  const call = new ClientCall(route, kind, payload, options)
  let opened: T | undefined
  let abandoned: RpcError | undefined
  let resolveOpen!: (value: T) => void
  let rejectOpen!: (error: RpcError) => void
  const opening = new Promise<T>((resolve, reject) => {
    resolveOpen = resolve
    rejectOpen = reject
  })
  const inner: CallNext = (info) => {
    if (opened !== undefined)
      return rejected(new RpcError(Code.FAILED_PRECONDITION, `next() called again on an open ${kind}`))
    let attempt: Promise<T>
    try {
      attempt = open(call.attemptOptions(info))
    } catch (err) {
      call.end()
      return rejected(err)
    }
    const ended = attempt.then(
      (streaming) =>
        new Promise<CallResult>((resolve, reject) => {
          opened = streaming
          const finish = (error: RpcError | undefined) => {
            call.stats.messagesSent = streaming.messagesSent
            call.stats.messagesReceived = streaming.messagesReceived
            call.end()
            if (error) reject(error)
            else resolve(okResult(call.stats, undefined, streaming.responseMetadata))
          }
          streaming.onEnd = finish
          // It may have failed while it was being written (a frame too large, a dead connection).
          if (streaming.error) finish(streaming.error)
          if (abandoned) streaming.cancel(abandoned)
          resolveOpen(streaming)
        }),
      (err: unknown) => {
        call.end()
        throw err
      },
    )
    ended.catch(noop)
    return ended
  }
  runChain(applyInterceptors(interceptors, inner), call).then(
    () => {
      if (opened === undefined)
        rejectOpen(new RpcError(Code.INTERNAL, `an interceptor settled the ${kind} without opening it`))
    },
    (err: RpcError) => {
      if (opened === undefined) rejectOpen(err)
    },
  )
  return settleBy(opening, options).catch((err: RpcError) => {
    abandoned = err
    throw err
  })
}

/**
 * Bounds what the caller waits for by the call's deadline and signal, whatever an interceptor
 * does (one that never calls next and never settles cannot hang the call).
 */
function settleBy<T>(promise: Promise<T>, options: Options): Promise<T> {
  const { timeout, signal } = options
  if (timeout === undefined && signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const entry =
      timeout === undefined
        ? undefined
        : deadlines.schedule(timeout, () => {
            done()
            reject(new RpcError(Code.DEADLINE_EXCEEDED, `call timed out after ${formatMs(timeout)}`))
          })
    const onAbort = () => {
      done()
      reject(abortedError(signal!))
    }
    const done = () => {
      deadlines.cancel(entry)
      signal?.removeEventListener('abort', onAbort)
    }
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        done()
        resolve(value)
      },
      (err: unknown) => {
        done()
        reject(err)
      },
    )
  })
}

function noop(): void {}
