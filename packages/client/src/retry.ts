import type { CallNext, Interceptor } from '@srpc/core'
import { RpcError } from '@srpc/protocol'
import { Backoff, sleep } from './backoff'
import type { ResolvedRetryPolicy } from './options'

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
