import type { CallNext, Interceptor } from '@srpc/core'
import { Code, RpcError } from '@srpc/protocol'
import { Backoff } from './backoff'
import type { ResolvedRetryPolicy } from './options'
import { abortedError } from './unary-call'

/**
 * The per-call `retry` policy as an interceptor (the pool puts it innermost, so the pool's own
 * interceptors see one call, not each attempt): a unary call that failed with one of the
 * policy's codes is sent again after a backoff wait, at most `maxAttempts` times in all, never
 * past its deadline, and not once the pool is closing (`closing` aborts the wait at once).
 */
export function retryInterceptor(policy: ResolvedRetryPolicy, closing: AbortSignal): Interceptor {
  return (next: CallNext): CallNext =>
    async (call) => {
      if (call.kind !== 'unary') return next(call)
      let backoff: Backoff | undefined
      for (let attempt = 1; ; attempt++) {
        try {
          return await next(call)
        } catch (err) {
          if (!RpcError.is(err) || attempt >= policy.maxAttempts || !policy.codes.has(err.code)) throw err
          if (closing.aborted) throw err
          backoff ??= new Backoff(policy.backoff)
          const delay = backoff.next()
          if (call.deadline !== undefined && Date.now() + delay >= call.deadline) throw err
          await sleep(delay, call.signal, closing)
        }
      }
    }
}

export function closedError(): RpcError {
  return new RpcError(Code.UNAVAILABLE, 'pool is closed')
}

/** Waits `ms` between retries; ends early with the call's signal, or when the pool closes. */
function sleep(ms: number, signal: AbortSignal | undefined, closing: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal))
    if (closing.aborted) return reject(closedError())
    const settle = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      closing.removeEventListener('abort', onClose)
    }
    const onAbort = () => {
      settle()
      reject(abortedError(signal!))
    }
    const onClose = () => {
      settle()
      reject(closedError())
    }
    const timer = setTimeout(() => {
      settle()
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
    closing.addEventListener('abort', onClose, { once: true })
  })
}
